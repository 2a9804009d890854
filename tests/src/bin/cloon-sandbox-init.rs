//! The first process of a test sandbox's pid namespace: it reaps every process that ends there
//! (a container's processes whose parent is gone are handed to it), and its end ends them all,
//! since the kernel kills every process of a pid namespace whose first process exits. So a test
//! that fails, or is killed, leaves no container process behind.

fn main() {
    loop {
        if let Err(nix::errno::Errno::ECHILD) = nix::sys::wait::wait() {
            // No child at the moment: look again soon (adopted processes become children).
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}
