//! cloon-spec: the article's step 4, the OCI bundle (see the library's [`cloon_spec::stage`]).

fn main() -> std::process::ExitCode {
    cloon_core::stage::main::<cloon_spec::stage::Spec>()
}
