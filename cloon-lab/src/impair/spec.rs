//! The words of an impairment: `netem: {delay, jitter, loss, rate, corrupt, duplicate}` on a link
//! of a topology file, or the flags of `cloon-lab netem`, parsed into a [`Netem`].
//!
//! Units follow tc(8), so that a user who knows `tc qdisc ... netem` reads them the same way:
//!
//! - times: `ns`, `us` (`usec`, `µs`), `ms` (`msec`), `s` (`sec`), decimals allowed (`1.5ms`);
//!   a bare number other than 0 is refused (is `10` ten milliseconds or ten seconds?).
//! - probabilities: a percentage, `1.5%` or `1.5` (a bare number is a percentage, as for
//!   containerlab's `--loss 10`), from 0 to 100.
//! - rates: `bit`, `kbit`, `mbit`, `gbit`, `tbit` (powers of 1000 bits per second), `kibit`,
//!   `mibit`, `gibit`, `tibit` (powers of 1024), and **bytes** per second with `bps`, `kbps`,
//!   `mbps`, `gbps` (tc's own, surprising, meaning of `bps`). A bare number is refused.
//!
//! A delay applies in each direction of the link: a delay D makes the round trip 2D longer.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// What went wrong reading one value, for a person: it quotes the value and says what would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// Splits `"1.5ms"` into its number (`1.5`, as a non-negative finite float) and its unit (`ms`).
fn split_number<'a>(what: &str, text: &'a str) -> Result<(f64, &'a str), ParseError> {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(end);
    let value: f64 = number.parse().map_err(|_| {
        ParseError(format!(
            "{what} {text:?}: not a number followed by a unit (e.g. {})",
            example(what)
        ))
    })?;
    if !value.is_finite() {
        return Err(ParseError(format!("{what} {text:?}: not a finite number")));
    }
    Ok((value, unit.trim()))
}

/// An example of a valid value, for error messages.
fn example(what: &str) -> &'static str {
    match what {
        "rate" => "10mbit",
        "loss" | "corrupt" | "duplicate" => "1.5%",
        _ => "10ms",
    }
}

/// A length of time with nanosecond precision: a delay or a jitter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(u64);

impl Time {
    /// No time at all.
    pub const ZERO: Time = Time(0);

    /// A time of `ns` nanoseconds.
    pub const fn from_nanos(ns: u64) -> Time {
        Time(ns)
    }

    /// A time of `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Time {
        Time(ms * 1_000_000)
    }

    /// The time in nanoseconds.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Whether it is zero.
    pub const fn is_zero(&self) -> bool {
        self.0 == 0
    }

    /// As a standard duration.
    pub const fn duration(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// Parses `text` as the value of `what` (the name quoted in errors).
    pub fn parse_as(what: &str, text: &str) -> Result<Time, ParseError> {
        let (value, unit) = split_number(what, text)?;
        let scale: f64 = match unit {
            "ns" | "nsec" | "nsecs" => 1.0,
            "us" | "usec" | "usecs" | "µs" => 1e3,
            "ms" | "msec" | "msecs" => 1e6,
            "s" | "sec" | "secs" => 1e9,
            "" if value == 0.0 => 1.0,
            "" => {
                return Err(ParseError(format!(
                    "{what} {text:?} needs a unit: write e.g. {}ms or {}s",
                    text.trim(),
                    text.trim()
                )))
            }
            other => {
                return Err(ParseError(format!(
                    "{what} {text:?}: unknown unit {other:?} (use ns, us, ms or s)"
                )))
            }
        };
        let ns = (value * scale).round();
        // An hour is far more than any link delay; it also keeps every sum of times in range.
        if ns > 3.6e12 {
            return Err(ParseError(format!("{what} {text:?} is more than an hour")));
        }
        Ok(Time(ns as u64))
    }
}

impl FromStr for Time {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Time, ParseError> {
        Time::parse_as("time", s)
    }
}

impl fmt::Display for Time {
    /// The largest unit that shows the time exactly: `10ms`, `1500us`, `2s`, `0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0;
        if ns == 0 {
            f.write_str("0ms")
        } else if ns.is_multiple_of(1_000_000_000) {
            write!(f, "{}s", ns / 1_000_000_000)
        } else if ns.is_multiple_of(1_000_000) {
            write!(f, "{}ms", ns / 1_000_000)
        } else if ns.is_multiple_of(1_000) {
            write!(f, "{}us", ns / 1_000)
        } else {
            write!(f, "{ns}ns")
        }
    }
}

/// A probability, as a percentage from 0 to 100 (`1.5` is 1.5 %).
#[derive(Debug, Clone, Copy, Default, PartialEq, PartialOrd)]
pub struct Percent(f64);

impl Percent {
    /// Never.
    pub const ZERO: Percent = Percent(0.0);

    /// A percentage; `None` unless it is a number from 0 to 100.
    pub fn new(percent: f64) -> Option<Percent> {
        (percent.is_finite() && (0.0..=100.0).contains(&percent)).then_some(Percent(percent))
    }

    /// The percentage (from 0 to 100).
    pub fn percent(self) -> f64 {
        self.0
    }

    /// Whether it is zero (never).
    pub fn is_zero(&self) -> bool {
        self.0 == 0.0
    }

    /// The probability as the kernel's netem wants it: a fraction of `u32::MAX`, rounded to the
    /// nearest (so 100 % is `u32::MAX`, 1 % is 42949673, as `tc` sends).
    pub fn as_u32_fraction(self) -> u32 {
        (self.0 / 100.0 * f64::from(u32::MAX)).round() as u32
    }

    /// Parses `text` as the value of `what` (the name quoted in errors).
    pub fn parse_as(what: &str, text: &str) -> Result<Percent, ParseError> {
        let (value, unit) = split_number(what, text)?;
        if !unit.is_empty() && unit != "%" {
            return Err(ParseError(format!(
                "{what} {text:?}: a percentage is written like 1.5% (unit {unit:?} unknown)"
            )));
        }
        Percent::new(value)
            .ok_or_else(|| ParseError(format!("{what} {text:?}: a percentage is from 0% to 100%")))
    }
}

impl FromStr for Percent {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Percent, ParseError> {
        Percent::parse_as("percentage", s)
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

/// A rate in bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(u64);

impl Rate {
    /// A rate of `bits` bits per second; `None` for zero (no limit is written as no rate).
    pub fn from_bits_per_sec(bits: u64) -> Option<Rate> {
        (bits > 0).then_some(Rate(bits))
    }

    /// Bits per second.
    pub fn bits_per_sec(self) -> u64 {
        self.0
    }

    /// Bytes per second, as the kernel's netem wants it (rounded down, at least 1).
    pub fn bytes_per_sec(self) -> u64 {
        (self.0 / 8).max(1)
    }

    /// How long `bytes` take on a wire of this rate.
    pub fn time_of(self, bytes: usize) -> Duration {
        let bits = u128::try_from(bytes).unwrap_or(u128::MAX).saturating_mul(8);
        let ns = bits.saturating_mul(1_000_000_000) / u128::from(self.0);
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// Parses `text` as the value of `what` (the name quoted in errors).
    pub fn parse_as(what: &str, text: &str) -> Result<Rate, ParseError> {
        let (value, unit) = split_number(what, text)?;
        let lower = unit.to_ascii_lowercase();
        let scale: f64 = match lower.as_str() {
            "bit" => 1.0,
            "kbit" => 1e3,
            "mbit" => 1e6,
            "gbit" => 1e9,
            "tbit" => 1e12,
            "kibit" => 1024.0,
            "mibit" => 1024.0 * 1024.0,
            "gibit" => 1024.0 * 1024.0 * 1024.0,
            "tibit" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
            "bps" => 8.0,
            "kbps" => 8e3,
            "mbps" => 8e6,
            "gbps" => 8e9,
            "tbps" => 8e12,
            "" => {
                return Err(ParseError(format!(
                    "{what} {text:?} needs a unit: write e.g. {}kbit or {}mbit (bits per second)",
                    text.trim(),
                    text.trim()
                )))
            }
            _ => {
                return Err(ParseError(format!(
                    "{what} {text:?}: unknown unit {unit:?} (use bit, kbit, mbit, gbit, or bps, \
                     kbps, mbps for bytes per second)"
                )))
            }
        };
        let bits = (value * scale).round();
        if bits < 1.0 {
            return Err(ParseError(format!(
                "{what} {text:?}: a rate must be at least 1bit (leave it out for no limit)"
            )));
        }
        if bits > 1e15 {
            return Err(ParseError(format!("{what} {text:?} is too large")));
        }
        Ok(Rate(bits as u64))
    }
}

impl FromStr for Rate {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Rate, ParseError> {
        Rate::parse_as("rate", s)
    }
}

impl fmt::Display for Rate {
    /// The largest power-of-1000 unit that shows the rate exactly: `10mbit`, `1500kbit`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = self.0;
        for (scale, unit) in [
            (1_000_000_000_000, "tbit"),
            (1_000_000_000, "gbit"),
            (1_000_000, "mbit"),
            (1_000, "kbit"),
        ] {
            if bits.is_multiple_of(scale) {
                return write!(f, "{}{unit}", bits / scale);
            }
        }
        write!(f, "{bits}bit")
    }
}

/// The queue limit of netem when none is given: 1000 frames.
pub const DEFAULT_LIMIT: u32 = 1000;

/// The impairment of a link, the same in each direction.
///
/// Absent fields are no impairment: `Netem::default()` changes nothing (a plain wire). It reads
/// from and writes to a topology file as `{delay: 10ms, jitter: 2ms, loss: 1%, rate: 10mbit,
/// corrupt: 0.1%, duplicate: 0.1%}`, with two more fields of cloon's: `limit` (how many frames
/// may wait in each direction, 1000 by default, as netem's) and `seed` (the user-space relay's
/// random numbers: the same seed and the same traffic give the same losses).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Netem {
    /// Added to every frame's trip in each direction.
    #[serde(default, skip_serializing_if = "Time::is_zero")]
    pub delay: Time,
    /// Each frame's delay is drawn uniformly from `delay ± jitter` (never below zero); frames
    /// may then overtake each other, as with netem.
    #[serde(default, skip_serializing_if = "Time::is_zero")]
    pub jitter: Time,
    /// The share of frames dropped.
    #[serde(default, skip_serializing_if = "Percent::is_zero")]
    pub loss: Percent,
    /// The wire's speed: a frame takes `size / rate` to leave, and waits for the frames before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
    /// The share of frames that get one random bit flipped.
    #[serde(default, skip_serializing_if = "Percent::is_zero")]
    pub corrupt: Percent,
    /// The share of frames sent twice.
    #[serde(default, skip_serializing_if = "Percent::is_zero")]
    pub duplicate: Percent,
    /// How many frames may wait in each direction; more are dropped (counted as overflow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The relay's random seed (the kernel's netem has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// A change to an impairment: the fields given replace the current ones, the others stay
/// (`cloon-lab netem FILE a:eth1 --delay 10ms` keeps the link's loss).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetemChange {
    pub delay: Option<Time>,
    pub jitter: Option<Time>,
    pub loss: Option<Percent>,
    /// `Some(None)` removes the rate limit.
    pub rate: Option<Option<Rate>>,
    pub corrupt: Option<Percent>,
    pub duplicate: Option<Percent>,
    pub limit: Option<u32>,
    pub seed: Option<u64>,
}

impl NetemChange {
    /// Parses the values of the `netem` subcommand's flags, each optional; the errors name the flag.
    pub fn parse(
        delay: Option<&str>,
        jitter: Option<&str>,
        loss: Option<&str>,
        rate: Option<&str>,
        corrupt: Option<&str>,
        duplicate: Option<&str>,
    ) -> Result<NetemChange, ParseError> {
        Ok(NetemChange {
            delay: delay.map(|t| Time::parse_as("--delay", t)).transpose()?,
            jitter: jitter.map(|t| Time::parse_as("--jitter", t)).transpose()?,
            loss: loss.map(|t| Percent::parse_as("--loss", t)).transpose()?,
            rate: rate
                .map(|t| match t.trim() {
                    "0" | "none" | "off" => Ok(None),
                    t => Rate::parse_as("--rate", t).map(Some),
                })
                .transpose()?,
            corrupt: corrupt
                .map(|t| Percent::parse_as("--corrupt", t))
                .transpose()?,
            duplicate: duplicate
                .map(|t| Percent::parse_as("--duplicate", t))
                .transpose()?,
            limit: None,
            seed: None,
        })
    }
}

impl Netem {
    /// An impairment from already parsed values (as the topology's `netem:` holds them): times,
    /// percentages from 0 to 100, a rate in bits per second; `None` is no impairment of that kind.
    /// Refuses a percentage outside 0..=100 and a jitter without a delay.
    pub fn from_parts(
        delay: Option<Duration>,
        jitter: Option<Duration>,
        loss: Option<f64>,
        rate_bits: Option<u64>,
        corrupt: Option<f64>,
        duplicate: Option<f64>,
    ) -> Result<Netem, ParseError> {
        let time = |d: Option<Duration>| {
            Time::from_nanos(d.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)))
        };
        let pct = |what: &str, p: Option<f64>| match p {
            None => Ok(Percent::ZERO),
            Some(p) => Percent::new(p)
                .ok_or_else(|| ParseError(format!("{what} {p}%: a percentage is from 0% to 100%"))),
        };
        let n = Netem {
            delay: time(delay),
            jitter: time(jitter),
            loss: pct("loss", loss)?,
            rate: rate_bits.and_then(Rate::from_bits_per_sec),
            corrupt: pct("corrupt", corrupt)?,
            duplicate: pct("duplicate", duplicate)?,
            limit: None,
            seed: None,
        };
        n.validate()?;
        Ok(n)
    }

    /// Whether it changes nothing (a plain wire).
    pub fn is_none(&self) -> bool {
        self.delay.is_zero()
            && self.jitter.is_zero()
            && self.loss.is_zero()
            && self.rate.is_none()
            && self.corrupt.is_zero()
            && self.duplicate.is_zero()
    }

    /// The queue limit in frames ([`DEFAULT_LIMIT`] when not given).
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_LIMIT)
    }

    /// Applies a change: the fields it gives replace these.
    pub fn changed(&self, change: &NetemChange) -> Netem {
        let mut n = self.clone();
        if let Some(v) = change.delay {
            n.delay = v;
        }
        if let Some(v) = change.jitter {
            n.jitter = v;
        }
        if let Some(v) = change.loss {
            n.loss = v;
        }
        if let Some(v) = change.rate {
            n.rate = v;
        }
        if let Some(v) = change.corrupt {
            n.corrupt = v;
        }
        if let Some(v) = change.duplicate {
            n.duplicate = v;
        }
        if let Some(v) = change.limit {
            n.limit = Some(v);
        }
        if let Some(v) = change.seed {
            n.seed = Some(v);
        }
        n
    }

    /// Checks what each field cannot say alone: a jitter needs a delay (as in tc, whose syntax
    /// is `delay 10ms 2ms`), a limit is at least one frame.
    pub fn validate(&self) -> Result<(), ParseError> {
        if !self.jitter.is_zero() && self.delay.is_zero() {
            return Err(ParseError(format!(
                "jitter {} needs a delay (the delay varies by ± the jitter)",
                self.jitter
            )));
        }
        if self.limit == Some(0) {
            return Err(ParseError(
                "limit 0: at least one frame must be able to wait".into(),
            ));
        }
        Ok(())
    }

    /// The arguments of `tc qdisc replace dev X root netem ...` that set this impairment:
    /// `limit 1000 delay 10ms 2ms loss 1% duplicate 2% corrupt 0.5% rate 10mbit`.
    pub fn tc_args(&self) -> String {
        let mut out = format!("limit {}", self.limit());
        if !self.delay.is_zero() {
            out += &format!(" delay {}", self.delay);
            if !self.jitter.is_zero() {
                out += &format!(" {}", self.jitter);
            }
        }
        if !self.loss.is_zero() {
            out += &format!(" loss {}", self.loss);
        }
        if !self.duplicate.is_zero() {
            out += &format!(" duplicate {}", self.duplicate);
        }
        if !self.corrupt.is_zero() {
            out += &format!(" corrupt {}", self.corrupt);
        }
        if let Some(rate) = self.rate {
            out += &format!(" rate {rate}");
        }
        out
    }
}

impl fmt::Display for Netem {
    /// The impairment in the words of the topology file: `delay 10ms jitter 2ms loss 1%`, or
    /// `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_none() {
            return f.write_str("none");
        }
        let mut parts = Vec::new();
        if !self.delay.is_zero() {
            parts.push(format!("delay {}", self.delay));
        }
        if !self.jitter.is_zero() {
            parts.push(format!("jitter {}", self.jitter));
        }
        if !self.loss.is_zero() {
            parts.push(format!("loss {}", self.loss));
        }
        if let Some(rate) = self.rate {
            parts.push(format!("rate {rate}"));
        }
        if !self.corrupt.is_zero() {
            parts.push(format!("corrupt {}", self.corrupt));
        }
        if !self.duplicate.is_zero() {
            parts.push(format!("duplicate {}", self.duplicate));
        }
        f.write_str(&parts.join(" "))
    }
}

/// A value of a topology file: a string, or a bare number (YAML reads `loss: 1` as a number).
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Int(u64),
    Float(f64),
}

impl Scalar {
    fn text(self) -> String {
        match self {
            Scalar::Text(t) => t,
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(x) => x.to_string(),
        }
    }
}

macro_rules! serde_as_text {
    ($ty:ty, $what:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = Scalar::deserialize(d)?.text();
                <$ty>::parse_as($what, &text).map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_as_text!(Time, "netem time");
serde_as_text!(Percent, "netem percentage");
serde_as_text!(Rate, "netem rate");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!("10ms".parse::<Time>(), Ok(Time::from_millis(10)));
        assert_eq!("1.5ms".parse::<Time>(), Ok(Time::from_nanos(1_500_000)));
        assert_eq!("250us".parse::<Time>(), Ok(Time::from_nanos(250_000)));
        assert_eq!("2s".parse::<Time>(), Ok(Time::from_millis(2000)));
        assert_eq!("0".parse::<Time>(), Ok(Time::ZERO));
        assert_eq!(" 7 ms ".parse::<Time>(), Ok(Time::from_millis(7)));
        let e = Time::parse_as("delay", "10").unwrap_err().0;
        assert!(e.contains("needs a unit") && e.contains("10ms"), "{e}");
        let e = Time::parse_as("delay", "10min").unwrap_err().0;
        assert!(e.contains("unknown unit \"min\""), "{e}");
        assert!(Time::parse_as("delay", "-1ms").is_err());
        assert!(Time::parse_as("delay", "ms").is_err());
        assert!(Time::parse_as("delay", "2h").is_err());
        assert!(Time::parse_as("delay", "7200s")
            .unwrap_err()
            .0
            .contains("hour"));
        for t in ["10ms", "1500us", "2s", "7ns", "0ms"] {
            assert_eq!(t.parse::<Time>().unwrap().to_string(), t);
        }
    }

    #[test]
    fn percents() {
        assert_eq!("1.5%".parse::<Percent>().unwrap().percent(), 1.5);
        assert_eq!("30".parse::<Percent>().unwrap().percent(), 30.0);
        assert_eq!(
            "100%".parse::<Percent>().unwrap().as_u32_fraction(),
            u32::MAX
        );
        assert_eq!(
            "1%".parse::<Percent>().unwrap().as_u32_fraction(),
            42_949_673
        );
        assert_eq!("0%".parse::<Percent>().unwrap().as_u32_fraction(), 0);
        let e = Percent::parse_as("--loss", "101%").unwrap_err().0;
        assert!(e.contains("from 0% to 100%"), "{e}");
        assert!(Percent::parse_as("--loss", "5x").is_err());
        assert!(Percent::parse_as("--loss", "").is_err());
        assert_eq!("0.5%".parse::<Percent>().unwrap().to_string(), "0.5%");
    }

    #[test]
    fn rates() {
        assert_eq!("10mbit".parse::<Rate>().unwrap().bits_per_sec(), 10_000_000);
        assert_eq!("10Mbit".parse::<Rate>().unwrap().bits_per_sec(), 10_000_000);
        assert_eq!("1kibit".parse::<Rate>().unwrap().bits_per_sec(), 1024);
        assert_eq!("100kbps".parse::<Rate>().unwrap().bits_per_sec(), 800_000);
        assert_eq!(
            "1.5gbit".parse::<Rate>().unwrap().bits_per_sec(),
            1_500_000_000
        );
        assert_eq!("10mbit".parse::<Rate>().unwrap().bytes_per_sec(), 1_250_000);
        let e = Rate::parse_as("rate", "1000").unwrap_err().0;
        assert!(e.contains("needs a unit"), "{e}");
        assert!(Rate::parse_as("rate", "0mbit").is_err());
        assert!(Rate::parse_as("rate", "3furlongs").is_err());
        assert_eq!("1500kbit".parse::<Rate>().unwrap().to_string(), "1500kbit");
        assert_eq!("2gbit".parse::<Rate>().unwrap().to_string(), "2gbit");
        let r: Rate = "8kbit".parse().unwrap();
        assert_eq!(r.time_of(1000), Duration::from_secs(1));
    }

    #[test]
    fn netem_from_topology_text() {
        let n: Netem = serde_json::from_str(
            r#"{"delay":"10ms","jitter":"2ms","loss":1,"rate":"10mbit","corrupt":"0.5%","duplicate":"2%"}"#,
        )
        .unwrap();
        assert_eq!(n.delay, Time::from_millis(10));
        assert_eq!(n.loss.percent(), 1.0);
        assert_eq!(n.limit(), 1000);
        assert_eq!(
            n.tc_args(),
            "limit 1000 delay 10ms 2ms loss 1% duplicate 2% corrupt 0.5% rate 10mbit"
        );
        assert_eq!(
            n.to_string(),
            "delay 10ms jitter 2ms loss 1% rate 10mbit corrupt 0.5% duplicate 2%"
        );
        let back: Netem = serde_json::from_str(&serde_json::to_string(&n).unwrap()).unwrap();
        assert_eq!(back, n);
        let e = serde_json::from_str::<Netem>(r#"{"delay":10}"#).unwrap_err();
        assert!(e.to_string().contains("needs a unit"), "{e}");
        let e = serde_json::from_str::<Netem>(r#"{"delai":"10ms"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        assert!(Netem::default().is_none());
        assert_eq!(Netem::default().to_string(), "none");
    }

    #[test]
    fn changes_keep_what_they_do_not_name() {
        let n = Netem {
            delay: Time::from_millis(50),
            loss: Percent::new(1.0).unwrap(),
            ..Netem::default()
        };
        let c = NetemChange::parse(Some("10ms"), None, None, None, None, None).unwrap();
        let m = n.changed(&c);
        assert_eq!(m.delay, Time::from_millis(10));
        assert_eq!(m.loss, n.loss);
        let c = NetemChange::parse(None, None, None, Some("none"), None, None).unwrap();
        assert_eq!(c.rate, Some(None));
        let e = NetemChange::parse(None, None, Some("x"), None, None, None).unwrap_err();
        assert!(e.0.starts_with("--loss"), "{e}");
    }

    #[test]
    fn from_parsed_values() {
        let n = Netem::from_parts(
            Some(Duration::from_millis(10)),
            Some(Duration::from_millis(2)),
            Some(1.0),
            Some(10_000_000),
            None,
            None,
        )
        .unwrap();
        assert_eq!(n.to_string(), "delay 10ms jitter 2ms loss 1% rate 10mbit");
        assert!(Netem::from_parts(None, None, Some(120.0), None, None, None).is_err());
        assert!(
            Netem::from_parts(None, Some(Duration::from_millis(1)), None, None, None, None)
                .is_err()
        );
        assert!(Netem::from_parts(None, None, None, None, None, None)
            .unwrap()
            .is_none());
    }

    #[test]
    fn validation() {
        let n = Netem {
            jitter: Time::from_millis(2),
            ..Netem::default()
        };
        assert!(n.validate().unwrap_err().0.contains("needs a delay"));
        let n = Netem {
            limit: Some(0),
            ..Netem::default()
        };
        assert!(n.validate().is_err());
    }
}
