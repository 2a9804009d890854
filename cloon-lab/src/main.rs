//! cloon-lab: the lab layer over the five cloon tools (see the library, [`cloon_lab`]).

fn main() {
    let f = std::env::args().nth(1).unwrap_or_default();
    match cloon_lab::topology::Lab::load(std::path::Path::new(&f), None) {
        Ok(l) => println!("{}", serde_json::to_string_pretty(&l).unwrap_or_default()),
        Err(e) => eprintln!("{e:#}"),
    }
}
