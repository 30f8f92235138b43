//! Fault injection on the local harness: the tests run on the node itself, so a pod's
//! process can be killed with SIGKILL like a crash (no signal handler, no cleanup).

/// Host PIDs of processes named `binary` whose environment says `POD_NAME=<pod>` (every
/// agent and operator container gets POD_NAME from the downward API). Empty where the
/// node's processes are out of reach (another cluster): callers then fall back to deleting
/// the pod with no grace period.
pub fn pids_of(binary: &str, pod: &str) -> Vec<i32> {
    let Ok(out) = std::process::Command::new("pgrep")
        .args(["-x", binary])
        .output()
    else {
        return Vec::new();
    };
    let want = format!("POD_NAME={pod}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == want.as_bytes()))
        })
        .collect()
}

/// Sends SIGKILL to each of `pids`.
pub fn kill_9(pids: &[i32]) -> anyhow::Result<()> {
    for pid in pids {
        let status = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -9 {pid} failed");
    }
    Ok(())
}
