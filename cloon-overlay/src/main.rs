//! cloon-overlay: the article's step 2, the copy-on-write root filesystem (see the library's
//! [`cloon_overlay::stage`]).

fn main() -> std::process::ExitCode {
    cloon_core::stage::main::<cloon_overlay::stage::Overlay>()
}
