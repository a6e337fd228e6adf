//! The `process_*` metrics every Prometheus client library exports, as the Prometheus
//! conventions define them (CPU time, memory, file descriptors, start time), read from `/proc`
//! at scrape time. On a system without `/proc` (or with one unreadable) the values it cannot
//! read are left out rather than reported as zero.
//!
//! Written here rather than taken from a crate: it is a few files read and parsed, and the
//! server forbids `unsafe` (no `sysconf`), so two kernel constants are assumed, as the
//! Prometheus project's own `procfs` library assumes them: `USER_HZ` is 100 (the unit of the
//! CPU and start times in `/proc/self/stat`, fixed by the kernel's ABI), and memory is read in
//! kB from `/proc/self/status`, so the page size is not needed.

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric as _},
    metrics::{counter::ConstCounter, gauge::ConstGauge},
};

/// Clock ticks a second in `/proc/self/stat` (`USER_HZ`).
const USER_HZ: f64 = 100.0;

/// Reads the process's figures on each scrape.
#[derive(Debug)]
pub(super) struct ProcessCollector;

/// What one scrape read; `None`: could not be read.
#[derive(Debug, Default, PartialEq)]
struct Figures {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<f64>,
    virtual_bytes: Option<f64>,
    open_fds: Option<f64>,
    max_fds: Option<f64>,
    start_time_seconds: Option<f64>,
}

impl Figures {
    fn read() -> Figures {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let stat = read("/proc/self/stat").and_then(|text| parse_stat(&text));
        let status = read("/proc/self/status").map(|text| parse_status(&text));
        let boot_time = read("/proc/stat").and_then(|text| parse_boot_time(&text));
        Figures {
            cpu_seconds: stat.map(|stat| stat.cpu_ticks as f64 / USER_HZ),
            resident_bytes: status.and_then(|(resident, _)| resident),
            virtual_bytes: status.and_then(|(_, size)| size),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|entries| entries.count() as f64),
            max_fds: read("/proc/self/limits").and_then(|text| parse_max_open_files(&text)),
            start_time_seconds: stat
                .zip(boot_time)
                .map(|(stat, boot)| boot + stat.start_ticks as f64 / USER_HZ),
        }
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let figures = Figures::read();
        if let Some(seconds) = figures.cpu_seconds {
            let counter = ConstCounter::new(seconds);
            counter.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                counter.metric_type(),
            )?)?;
        }
        for (name, help, value) in [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                figures.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                figures.virtual_bytes,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                figures.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors (the soft limit)",
                figures.max_fds,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                figures.start_time_seconds,
            ),
        ] {
            if let Some(value) = value {
                let gauge = ConstGauge::new(value);
                gauge.encode(encoder.encode_descriptor(
                    name,
                    help,
                    None,
                    gauge.metric_type(),
                )?)?;
            }
        }
        Ok(())
    }
}

/// The fields of `/proc/self/stat` used here, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stat {
    /// `utime` + `stime`.
    cpu_ticks: u64,
    /// `starttime`: after boot.
    start_ticks: u64,
}

/// Parses `/proc/self/stat` (proc(5)). The command name, field 2, is in parentheses and may
/// hold spaces and parentheses itself, so fields are counted from after its last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let (_, rest) = text.rsplit_once(')')?;
    // `rest` starts at field 3 (state): field n is at index n - 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        cpu_ticks: field(14)? + field(15)?,
        start_ticks: field(22)?,
    })
}

/// `VmRSS` and `VmSize` of `/proc/self/status`, in bytes.
fn parse_status(text: &str) -> (Option<f64>, Option<f64>) {
    let kilobytes = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|value| value.trim().strip_suffix("kB"))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .map(|kilobytes| kilobytes * 1024.0)
    };
    (kilobytes("VmRSS"), kilobytes("VmSize"))
}

/// `btime` of `/proc/stat`: when the system booted, in seconds since the epoch.
fn parse_boot_time(text: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|value| value.trim().parse().ok())
}

/// The soft limit on open files in `/proc/self/limits`; `unlimited` is reported as
/// `RLIM_INFINITY` (2^64 - 1), as Go's client reports it.
fn parse_max_open_files(text: &str) -> Option<f64> {
    let line = text
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))?;
    match line.split_whitespace().next()? {
        "unlimited" => Some(u64::MAX as f64),
        soft => soft.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        // A command name with a space and a parenthesis, as a process may name itself.
        let stat = "4242 (connector) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                    250 50 0 0 20 0 9 0 123456 987654321 4096 18446744073709551615";
        assert_eq!(
            parse_stat(stat),
            Some(Stat {
                cpu_ticks: 300,
                start_ticks: 123456
            })
        );
        assert_eq!(parse_stat("4242 (truncated"), None);
        assert_eq!(parse_stat("4242 (short) S 1 2"), None);
    }

    #[test]
    fn status_memory_is_in_kilobytes() {
        let status = "Name:\tconnector-server\nVmPeak:\t  999 kB\nVmSize:\t  2048 kB\n\
                      VmRSS:\t   100 kB\nThreads:\t9\n";
        assert_eq!(parse_status(status), (Some(102_400.0), Some(2_097_152.0)));
        assert_eq!(parse_status("Name:\tkthread\n"), (None, None));
    }

    #[test]
    fn boot_time_and_open_file_limit() {
        assert_eq!(
            parse_boot_time("cpu  1 2 3\nintr 5\nbtime 1796000000\nprocesses 9\n"),
            Some(1_796_000_000.0)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             63704                63704                processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(parse_max_open_files(limits), Some(1024.0));
        assert_eq!(
            parse_max_open_files(
                "Max open files            unlimited            unlimited            files\n"
            ),
            Some(u64::MAX as f64)
        );
    }

    #[test]
    fn this_process_reads_plausibly() {
        let figures = Figures::read();
        let resident = figures.resident_bytes.expect("VmRSS");
        assert!(resident > 0.0 && resident <= figures.virtual_bytes.expect("VmSize"));
        assert!(figures.open_fds.expect("fds") >= 3.0);
        assert!(figures.open_fds <= figures.max_fds);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let started = figures.start_time_seconds.expect("start time");
        // btime is whole seconds: the start can read up to a second early.
        assert!(
            started <= now + 1.0 && started > now - 3600.0,
            "{started} vs {now}"
        );
        assert!(figures.cpu_seconds.expect("cpu") >= 0.0);
    }
}
