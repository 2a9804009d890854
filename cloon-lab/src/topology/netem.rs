//! `netem:` on a link: the impairments a link carries (delay, jitter, loss, rate, corruption,
//! duplication), parsed into numbers with units checked, so that the impairment engine
//! (`crate::impair`, another engineer's) never sees a string.
//!
//! ```yaml
//! links:
//!   - endpoints: ["a:eth1", "b:eth1"]
//!     netem: {delay: 10ms, jitter: 2ms, loss: 1%, rate: 10mbit, corrupt: 0.1%, duplicate: 0.5%}
//! ```
//!
//! Units follow tc's: times in `s`, `ms`, `us` (a unit is required: tc's bare number means
//! microseconds, an easy mistake); percentages with `%` or as a bare number of percent; rates in
//! bits per second with `bit`, `kbit`, `mbit`, `gbit` (or a bare number), or in bytes per second
//! with `bps`, `kbps`, `mbps`, `gbps`, decimal multiples as tc has them. netem acts on what an
//! interface sends: the engine applies it to both ends of the link, so the delay is symmetric.

use serde::Serialize;
use std::time::Duration;

/// The impairments of one link, as parsed. `None`: not asked for.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Netem {
    /// Added latency.
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub delay: Option<Duration>,
    /// Random variation of the delay (needs `delay`).
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub jitter: Option<Duration>,
    /// Packets dropped, in percent (0 to 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// Bandwidth limit, in bits per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<u64>,
    /// Packets with a bit flipped, in percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrupt: Option<f64>,
    /// Packets sent twice, in percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<f64>,
}

/// Durations in JSON as tc writes them, with their unit: `"10ms"`, `"1.5ms"`, `"250us"`.
mod opt_duration {
    use serde::Serializer;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::show_duration(*d)),
            None => s.serialize_none(),
        }
    }
}

impl Netem {
    /// Whether nothing is asked for (`netem: {}`).
    pub fn is_empty(&self) -> bool {
        *self == Netem::default()
    }

    /// One line for people: `delay 10ms jitter 2ms loss 1% rate 10mbit`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(d) = self.delay {
            parts.push(format!("delay {}", show_duration(d)));
        }
        if let Some(d) = self.jitter {
            parts.push(format!("jitter {}", show_duration(d)));
        }
        if let Some(p) = self.loss {
            parts.push(format!("loss {}%", show_number(p)));
        }
        if let Some(r) = self.rate {
            parts.push(format!("rate {}", show_rate(r)));
        }
        if let Some(p) = self.corrupt {
            parts.push(format!("corrupt {}%", show_number(p)));
        }
        if let Some(p) = self.duplicate {
            parts.push(format!("duplicate {}%", show_number(p)));
        }
        parts.join(" ")
    }
}

/// A duration as tc would write it: `10ms`, `1.5ms`, `250us`, `2s`.
pub fn show_duration(d: Duration) -> String {
    let us = d.as_micros();
    if us != 0 && us.is_multiple_of(1_000_000) {
        format!("{}s", us / 1_000_000)
    } else if us >= 1000 {
        format!("{}ms", show_number(us as f64 / 1000.0))
    } else {
        format!("{us}us")
    }
}

fn show_number(x: f64) -> String {
    let s = format!("{x:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A rate in bits per second, in the largest decimal unit that divides it.
pub fn show_rate(bits: u64) -> String {
    for (unit, n) in [
        ("gbit", 1_000_000_000),
        ("mbit", 1_000_000),
        ("kbit", 1_000),
    ] {
        if bits >= n && bits.is_multiple_of(n) {
            return format!("{}{unit}", bits / n);
        }
    }
    format!("{bits}bit")
}

/// Splits `10.5ms` into `(10.5, "ms")`.
fn number_and_unit(text: &str) -> Result<(f64, String), String> {
    let t = text.trim();
    let end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(end);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("\"{text}\" does not start with a number"))?;
    if !value.is_finite() {
        return Err(format!("\"{text}\" is not a finite number"));
    }
    Ok((value, unit.trim().to_ascii_lowercase()))
}

/// A time: `10ms`, `1.5s`, `200us`. A unit is required.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (value, unit) = number_and_unit(text)?;
    let us_per = match unit.as_str() {
        "s" | "sec" | "secs" => 1_000_000.0,
        "ms" | "msec" | "msecs" => 1_000.0,
        "us" | "usec" | "usecs" => 1.0,
        "" => {
            return Err(format!(
                "\"{text}\" has no unit: write it with one, e.g. {text}ms"
            ))
        }
        other => {
            return Err(format!(
                "\"{text}\": unknown time unit \"{other}\" (use s, ms or us)"
            ))
        }
    };
    let us = value * us_per;
    if us > 3_600_000_000.0 {
        return Err(format!("\"{text}\" is more than an hour"));
    }
    Ok(Duration::from_micros(us.round() as u64))
}

/// A percentage: `1%`, `0.5%`, or a bare number of percent; 0 to 100.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let (value, unit) = number_and_unit(text)?;
    if !(unit.is_empty() || unit == "%") {
        return Err(format!("\"{text}\": write a percentage, e.g. 1%"));
    }
    if value > 100.0 {
        return Err(format!("\"{text}\" is more than 100%"));
    }
    Ok(value)
}

/// A rate: `10mbit`, `1gbit`, `500kbit`, `100kbps` (bytes), or a bare number of bits per second.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let (value, unit) = number_and_unit(text)?;
    let bits_per = match unit.as_str() {
        "" | "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        "tbit" => 1e12,
        "bps" => 8.0,
        "kbps" => 8e3,
        "mbps" => 8e6,
        "gbps" => 8e9,
        other => {
            return Err(format!(
                "\"{text}\": unknown rate unit \"{other}\" (use bit, kbit, mbit, gbit, or bps, kbps, mbps, gbps for bytes)"
            ))
        }
    };
    let bits = (value * bits_per).round();
    if bits < 8.0 {
        return Err(format!("\"{text}\" is less than one byte per second"));
    }
    if bits > u64::MAX as f64 / 2.0 {
        return Err(format!("\"{text}\" is too large"));
    }
    Ok(bits as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10ms").unwrap(), Duration::from_millis(10));
        assert_eq!(
            parse_duration("1.5ms").unwrap(),
            Duration::from_micros(1500)
        );
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert!(parse_duration("10").unwrap_err().contains("no unit"));
        assert!(parse_duration("10h")
            .unwrap_err()
            .contains("unknown time unit"));
        assert!(parse_duration("ms").is_err());
        assert_eq!(show_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(show_duration(Duration::from_secs(2)), "2s");
    }

    #[test]
    fn percents_and_rates() {
        assert_eq!(parse_percent("1%").unwrap(), 1.0);
        assert_eq!(parse_percent("0.5").unwrap(), 0.5);
        assert!(parse_percent("101%").is_err());
        assert!(parse_percent("1x").is_err());
        assert_eq!(parse_rate("10mbit").unwrap(), 10_000_000);
        assert_eq!(parse_rate("1kbps").unwrap(), 8_000);
        assert_eq!(parse_rate("64000").unwrap(), 64_000);
        assert!(parse_rate("10mb").is_err());
        assert_eq!(show_rate(10_000_000), "10mbit");
    }

    #[test]
    fn summary_and_json() {
        let n = Netem {
            delay: Some(Duration::from_millis(10)),
            loss: Some(1.0),
            rate: Some(10_000_000),
            ..Netem::default()
        };
        assert_eq!(n.summary(), "delay 10ms loss 1% rate 10mbit");
        let j = serde_json::to_value(&n).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"delay": "10ms", "loss": 1.0, "rate": 10_000_000})
        );
        assert!(Netem::default().is_empty());
    }
}
