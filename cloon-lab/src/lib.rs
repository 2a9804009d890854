//! cloon-lab: network labs over the five cloon tools.
//!
//! A lab is a topology file in containerlab's format ([`topology`]). cloon-lab reads it, checks
//! it whole, then drives the five tools as subprocesses, piping JSON documents from one to the
//! next exactly as a shell pipeline would: each container is
//! `cloon-overlay | cloon-netns | cloon-spec | cloon-run`, each point-to-point link a
//! `cloon-netns link`, each `exec:` a `cloon-run exec`. The same commands, rendered as text, are
//! the Makefile and the shell script `cloon-lab makefile` and `cloon-lab script` print, so what
//! cloon-lab does can be shown step by step, or done without it.
//!
//! Every object of a lab carries the lab's name ([`naming`]): its containers and namespaces are
//! `LAB-NODE`, its links `LAB.NODE.IF.NODE.IF`, its host-side interfaces and bridges get short
//! names derived from a hash of the lab's, and every tool is given the lab's own state directory
//! (`/run/cloon/labs/LAB`), so two labs never share a name, a record or an interface group, and the
//! `down` of one never touches the other.
//!
//! A lab may spread over several machines ([`spread`]): `hosts:` names them, each container's
//! `host:` says where it runs, and `cloon-lab up FILE --host NAME` on each brings up that host's
//! part, its links to the others being VXLAN tunnels (`cloon-netns vxlan`).

pub mod capture;
pub mod cli;
pub mod command;
pub mod complete;
pub mod doctor;
pub mod down;
pub mod graph;
pub mod image;
pub mod impair;
pub mod inspect;
pub mod jobs;
pub mod makefile;
pub mod naming;
pub mod netem;
pub mod plan;
pub mod run;
pub mod spread;
pub mod state;
pub mod topology;
pub mod up;
