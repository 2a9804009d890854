//! cloon-img: make the ext4 image holding a container's root filesystem (see the library's
//! [`cloon_img::cli`]).

fn main() -> std::process::ExitCode {
    cloon_img::cli::main()
}
