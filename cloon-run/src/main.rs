//! cloon-run: the article's step 5, the container (see the library's [`cloon_run::stage`]).

fn main() -> std::process::ExitCode {
    cloon_core::stage::main::<cloon_run::stage::Run>()
}
