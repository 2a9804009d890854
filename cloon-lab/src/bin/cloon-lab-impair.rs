//! cloon-lab-impair: cloon-lab's link impairment engine and capture as a small tool of its own.
//!
//! `relay` is the relay process that `cloon_lab::impair::apply` starts (one per impaired link);
//! the other subcommands drive the library directly, for scripts, tests and debugging:
//!
//! ```text
//! cloon-lab-impair apply --record-dir DIR [--engine auto|kernel|relay] [--seed N] [--limit N]
//!                        [--delay D] [--jitter D] [--loss P%] [--rate R] [--corrupt P%]
//!                        [--duplicate P%] [--one-way] END_A END_B   (END: IF or NS:IF)
//! cloon-lab-impair change --record-dir DIR [--delay D] ...      (the rest stays)
//! cloon-lab-impair show --record-dir DIR                        (JSON; exit 1 if it does not hold)
//! cloon-lab-impair remove --record-dir DIR
//! cloon-lab-impair gc --under DIR                               (relays whose record is lost)
//! cloon-lab-impair explain [--engine ...] [netem flags] END_A END_B
//! cloon-lab-impair probe                                        (does the kernel have netem?)
//! cloon-lab-impair capture END [-w FILE.pcap] [-c COUNT]
//! ```

use anyhow::{anyhow, Context, Result};
use clap::{Args, Parser, Subcommand};
use cloon_lab::capture::CaptureOptions;
use cloon_lab::{capture, impair};
use impair::{End, Engine, NetemChange};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "cloon-lab-impair",
    version,
    about = "Link impairment (netem or a user-space relay) and capture for cloon labs"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Args, Clone)]
struct NetemFlags {
    /// Delay added in each direction (10ms, 1.5ms, 200us).
    #[arg(long)]
    delay: Option<String>,
    /// Variation of the delay, ± (needs a delay).
    #[arg(long)]
    jitter: Option<String>,
    /// Frames dropped (1%, 0.5%).
    #[arg(long)]
    loss: Option<String>,
    /// Wire speed (10mbit, 512kbit; bps = bytes per second, as in tc).
    #[arg(long)]
    rate: Option<String>,
    /// Frames with a bit flipped.
    #[arg(long)]
    corrupt: Option<String>,
    /// Frames sent twice.
    #[arg(long)]
    duplicate: Option<String>,
    /// Frames that may wait in each direction (1000).
    #[arg(long)]
    limit: Option<u32>,
    /// The relay's random seed, to repeat a run.
    #[arg(long)]
    seed: Option<u64>,
}

impl NetemFlags {
    fn change(&self) -> Result<NetemChange> {
        let mut c = NetemChange::parse(
            self.delay.as_deref(),
            self.jitter.as_deref(),
            self.loss.as_deref(),
            self.rate.as_deref(),
            self.corrupt.as_deref(),
            self.duplicate.as_deref(),
        )
        .map_err(|e| anyhow!("{e}"))?;
        c.limit = self.limit;
        c.seed = self.seed;
        Ok(c)
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// The relay process itself (started by apply; stops on SIGTERM).
    #[command(hide = true)]
    Relay {
        #[arg(long)]
        record_dir: PathBuf,
    },
    /// Impairs the link between two ends, recorded in DIR.
    Apply {
        #[arg(long)]
        record_dir: PathBuf,
        #[arg(long, default_value = "auto")]
        engine: Engine,
        #[command(flatten)]
        netem: NetemFlags,
        /// Impair only the frames from END_A to END_B (this host's end of a link to another
        /// host, whose host impairs the way back)
        #[arg(long)]
        one_way: bool,
        end_a: String,
        end_b: String,
    },
    /// Changes the impairment recorded in DIR; what is not named stays.
    Change {
        #[arg(long)]
        record_dir: PathBuf,
        #[command(flatten)]
        netem: NetemFlags,
    },
    /// Prints the status of the impairment recorded in DIR as JSON.
    Show {
        #[arg(long)]
        record_dir: PathBuf,
    },
    /// Undoes the impairment recorded in DIR.
    Remove {
        #[arg(long)]
        record_dir: PathBuf,
    },
    /// Stops the relays recorded below DIR whose record is lost (for a lab's gc).
    Gc {
        #[arg(long)]
        under: PathBuf,
    },
    /// Says what apply would do.
    Explain {
        #[arg(long, default_value = "auto")]
        engine: Engine,
        #[arg(long, default_value = "DIR")]
        record_dir: PathBuf,
        #[command(flatten)]
        netem: NetemFlags,
        end_a: String,
        end_b: String,
    },
    /// Says whether this kernel has netem.
    Probe,
    /// Writes an interface's traffic as pcap (stdout by default).
    Capture {
        end: String,
        /// Write to this file instead of standard output.
        #[arg(short = 'w')]
        write: Option<PathBuf>,
        /// Stop after this many frames.
        #[arg(short = 'c')]
        count: Option<u64>,
    },
}

fn end(text: &str) -> Result<End> {
    End::parse(text).map_err(|e| anyhow!("{e}"))
}

fn main() {
    let code = match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cloon-lab-impair: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Cmd::Relay { record_dir } => impair::relay::serve(&record_dir).map(|()| 0),
        Cmd::Apply {
            record_dir,
            engine,
            netem,
            one_way,
            end_a,
            end_b,
        } => {
            let ends = [end(&end_a)?, end(&end_b)?];
            let n = impair::Netem::default().changed(&netem.change()?);
            std::fs::create_dir_all(&record_dir)
                .with_context(|| format!("cannot make {}", record_dir.display()))?;
            let opts = impair::Options {
                one_way,
                ..impair::Options::default()
            };
            print_json(&impair::apply_with(&ends, &n, engine, &record_dir, &opts)?)?;
            Ok(0)
        }
        Cmd::Change { record_dir, netem } => {
            print_json(&impair::change(&record_dir, &netem.change()?)?)?;
            Ok(0)
        }
        Cmd::Show { record_dir } => match impair::status(&record_dir)? {
            Some(st) => {
                print_json(&st)?;
                for p in &st.problems {
                    eprintln!("cloon-lab-impair: {p}");
                }
                Ok(if st.ok { 0 } else { 1 })
            }
            None => Err(anyhow!(
                "no impairment recorded in {}",
                record_dir.display()
            )),
        },
        Cmd::Remove { record_dir } => {
            impair::remove(&record_dir)?;
            // The directory apply made, if nothing else is in it.
            let _ = std::fs::remove_dir(&record_dir);
            Ok(0)
        }
        Cmd::Gc { under } => {
            for dir in impair::stop_orphans(&under)? {
                println!("stopped the relay of {}", dir.display());
            }
            Ok(0)
        }
        Cmd::Explain {
            engine,
            record_dir,
            netem,
            end_a,
            end_b,
        } => {
            let ends = [end(&end_a)?, end(&end_b)?];
            let n = impair::Netem::default().changed(&netem.change()?);
            let (kind, why) = impair::choose(engine);
            println!("# {why}");
            for line in impair::explain(&ends, &n, kind, &record_dir) {
                println!("{line}");
            }
            Ok(0)
        }
        Cmd::Probe => match impair::kernel::probe() {
            Ok(()) => {
                println!("netem: available");
                Ok(0)
            }
            Err(why) => {
                println!("netem: unavailable: {why}");
                Ok(1)
            }
        },
        Cmd::Capture {
            end: e,
            write,
            count,
        } => {
            let iface = end(&e)?;
            let opts = CaptureOptions {
                count,
                ..CaptureOptions::default()
            };
            let summary = match write {
                Some(path) => {
                    let f = std::fs::File::create(&path)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    capture::run(&iface, std::io::BufWriter::new(f), &opts)?
                }
                None => capture::run(&iface, std::io::stdout().lock(), &opts)?,
            };
            eprintln!(
                "cloon-lab-impair: {} frames captured ({} dropped by the kernel)",
                summary.frames, summary.kernel_drops
            );
            Ok(0)
        }
    }
}
