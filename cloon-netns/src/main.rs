//! cloon-netns: the article's step 3, the private IP stack (see the library's
//! [`cloon_netns::stage`]).

fn main() -> std::process::ExitCode {
    cloon_core::stage::main::<cloon_netns::stage::Net>()
}
