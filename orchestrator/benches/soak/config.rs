//! The soak's options: command-line flags (after `--`), else `WEIR_SOAK_*`
//! environment variables, else defaults (10 minutes, 5,000,000 records,
//! every fault).

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use weir::domain::Dur;

use crate::faults::Fault;

#[derive(Debug, Clone)]
pub struct Config {
    /// How long records are produced; checks and the drain come after.
    pub duration: Duration,
    /// Records produced over the run.
    pub records: u64,
    /// Records per second: `records / duration` unless given.
    pub rate: f64,
    pub faults: Vec<Fault>,
    /// The width of a report row (a minute by default).
    pub report_every: Duration,
    pub partitions: i32,
    pub keys: usize,
    pub parallelism: u32,
    /// How long a fault may take to heal before it counts as not recovered.
    pub recovery_timeout: Duration,
    /// After the last record, how long the sinks may take to catch up.
    pub drain_timeout: Duration,
    /// The `weir serve` / `weir worker` heartbeat TTL.
    pub worker_ttl: String,
    /// Keep the services' data directory (logs are always kept).
    pub keep_data: bool,
    /// Whether the load's producer is idempotent (see docs/soak.md: a
    /// long-lived idempotent producer wedges tansu 0.6 when it restarts).
    pub load_idempotence: bool,
}

const HELP: &str = "\
weir soak: two jobs under a steady load and a schedule of faults (docs/soak.md)

  cargo bench -p weir --bench soak -- [options]

  --duration D          run time, e.g. 3m, 1h            [WEIR_SOAK_DURATION, 10m]
  --records N           records over the run             [WEIR_SOAK_RECORDS, 5000000]
  --rate R              records/s (default records/duration) [WEIR_SOAK_RATE]
  --faults LIST         all | none | comma list of serve,worker,broker,postgres,nats,stall
                                                         [WEIR_SOAK_FAULTS, all]
  --report-every D      row width                        [WEIR_SOAK_REPORT_EVERY, 1m]
  --partitions N        input partitions                 [WEIR_SOAK_PARTITIONS, 4]
  --keys N              distinct keys (users)            [WEIR_SOAK_KEYS, 64]
  --parallelism N       each job's parallelism           [WEIR_SOAK_PARALLELISM, 2]
  --recovery-timeout D  a fault not healed by then fails [WEIR_SOAK_RECOVERY_TIMEOUT, 3m]
  --drain-timeout D     catch-up allowed after the load  [WEIR_SOAK_DRAIN_TIMEOUT, 10m]
  --worker-ttl D        worker heartbeat TTL             [WEIR_SOAK_WORKER_TTL, 10s]
  --load-idempotence B  idempotent load producer         [WEIR_SOAK_LOAD_IDEMPOTENCE, false]
  --keep-data           keep the private services' data  [WEIR_SOAK_KEEP_DATA=1]
";

fn dur(s: &str) -> Result<Duration> {
    s.parse::<Dur>()
        .map(Dur::get)
        .map_err(|e| anyhow!("`{s}` is not a duration (e.g. 90s, 10m, 1h): {e}"))
}

impl Config {
    pub fn from_env_and_args() -> Result<Config> {
        let mut opts: Vec<(String, Option<String>)> = Vec::new();
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                // What `cargo bench` passes to every bench binary.
                "--bench" => {}
                "-h" | "--help" => {
                    print!("{HELP}");
                    std::process::exit(0);
                }
                "--keep-data" => opts.push(("keep-data".into(), Some("1".into()))),
                flag if flag.starts_with("--") => {
                    let (name, value) = match flag[2..].split_once('=') {
                        Some((n, v)) => (n.to_owned(), v.to_owned()),
                        None => (
                            flag[2..].to_owned(),
                            args.next()
                                .ok_or_else(|| anyhow!("{flag} needs a value\n\n{HELP}"))?,
                        ),
                    };
                    opts.push((name, Some(value)));
                }
                other => bail!("unexpected argument `{other}`\n\n{HELP}"),
            }
        }
        let get = |name: &str| -> Option<String> {
            opts.iter()
                .rev()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| v.clone())
                .or_else(|| {
                    let var = format!("WEIR_SOAK_{}", name.replace('-', "_").to_uppercase());
                    std::env::var(var).ok().filter(|v| !v.is_empty())
                })
        };
        for (name, _) in &opts {
            if !HELP.contains(&format!("--{name} ")) && name != "keep-data" {
                bail!("unknown option --{name}\n\n{HELP}");
            }
        }
        let num = |name: &str, default: u64| -> Result<u64> {
            match get(name) {
                Some(v) => v
                    .replace('_', "")
                    .parse()
                    .with_context(|| format!("--{name} `{v}` is not a whole number")),
                None => Ok(default),
            }
        };
        let duration = dur(&get("duration").unwrap_or_else(|| "10m".into()))?;
        if duration < Duration::from_secs(30) {
            bail!("--duration must be at least 30s");
        }
        let records = num("records", 5_000_000)?;
        let rate = match get("rate") {
            Some(r) => r
                .parse::<f64>()
                .ok()
                .filter(|r| *r > 0.0)
                .ok_or_else(|| anyhow!("--rate `{r}` is not a positive number"))?,
            None => records as f64 / duration.as_secs_f64(),
        };
        let faults = Fault::parse_list(&get("faults").unwrap_or_else(|| "all".into()))?;
        let worker_ttl = get("worker-ttl").unwrap_or_else(|| "10s".into());
        dur(&worker_ttl)?;
        Ok(Config {
            duration,
            records,
            rate,
            faults,
            report_every: dur(&get("report-every").unwrap_or_else(|| "1m".into()))?,
            partitions: num("partitions", 4)?.clamp(1, 64) as i32,
            keys: num("keys", 64)?.max(1) as usize,
            parallelism: num("parallelism", 2)?.clamp(1, 64) as u32,
            recovery_timeout: dur(&get("recovery-timeout").unwrap_or_else(|| "3m".into()))?,
            drain_timeout: dur(&get("drain-timeout").unwrap_or_else(|| "10m".into()))?,
            worker_ttl,
            keep_data: get("keep-data").is_some_and(|v| v != "0"),
            load_idempotence: get("load-idempotence").is_some_and(|v| v == "true" || v == "1"),
        })
    }
}
