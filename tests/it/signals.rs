//! Signals and process supervision: `--init` (PID 1 that forwards signals and
//! reaps zombies), signals sent to a foreground `casco run`, and what happens
//! when casco or a container's monitor is killed with SIGKILL.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;

use crate::common::*;

/// `ps -o pid,ppid,stat,args` of a running container, one row of fields each
/// (the header dropped).
fn ps_rows(env: &TestEnv, name: &str) -> Vec<Vec<String>> {
    let out = env
        .casco(["exec", name, "ps", "-o", "pid,ppid,stat,args"])
        .run()
        .success();
    out.lines()
        .iter()
        .skip(1)
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

/// Whether `test FLAG PATH` holds in running container `name` (via `exec`);
/// panics with the whole story when `exec` itself fails.
#[track_caller]
fn exec_test(env: &TestEnv, name: &str, flag: &str, path: &str) -> bool {
    let out = env.casco(["exec", name, "test", flag, path]).run();
    match out.status {
        0 => true,
        1 => false,
        _ => panic!("{}", out.report(&format!("exec into {name} failed"))),
    }
}

/// Whether host process `pid` is gone or a zombie (dead, not yet reaped by
/// whoever inherited it).
fn is_dead(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // "PID (comm) STATE ...": the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

/// comm, state, parent and where it waits, of host process `pid`.
fn describe_process(pid: i32) -> String {
    let read = |f: &str| std::fs::read_to_string(format!("/proc/{pid}/{f}")).unwrap_or_default();
    let status = read("status");
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    format!(
        "comm {}, state {}, PPid {}, NSpid {}, waiting in {}",
        read("comm").trim(),
        field("State:"),
        field("PPid:"),
        field("NSpid:"),
        read("wchan").trim()
    )
}

// --- --init -------------------------------------------------------------------------

both! {
    /// podman `--init` (catatonit): the command is not PID 1 (`echo $$` is
    /// not 1), and PID 1 is the init, the command's parent, not the command
    /// (`ps -o pid,comm` shows neither sh nor ps as PID 1).
    fn init_runs_the_command_under_pid_1(env) {
        env.import_busybox("bb");
        let out = env
            .casco(["run", "--rm", "--init", "bb", "sh", "-c", "echo $$; grep PPid /proc/$$/status; ps -o pid,comm"])
            .run()
            .success();
        let lines = out.lines();
        assert!(lines.len() >= 4, "{}", out.report("short output"));
        assert_ne!(lines[0], "1", "{}", out.report("the command is PID 1 despite --init"));
        let ppid: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(ppid, ["PPid:", "1"], "{}", out.report("the init is not the command's parent"));
        let rows: Vec<Vec<&str>> = lines[3..].iter().map(|l| l.split_whitespace().collect()).collect();
        let pid1: Vec<&Vec<&str>> = rows.iter().filter(|r| r.first() == Some(&"1")).collect();
        assert_eq!(pid1.len(), 1, "{}", out.report("ps shows no PID 1"));
        let comm = pid1[0].get(1).copied().unwrap_or_default();
        assert!(!comm.is_empty() && comm != "sh" && comm != "ps", "{}", out.report("PID 1 is the command"));
        // Without --init the command is PID 1, as the control.
        env.casco(["run", "--rm", "bb", "sh", "-c", "echo $$"]).run().success().stdout_is("1\n");
    }
}

both! {
    /// The init that `--init` puts in the container shows nothing of the
    /// host: its command line (/proc/1/cmdline, `ps`) does not name the
    /// store or run root, the test dir, or casco's path on the host (podman's
    /// catatonit shows `/run/podman-init -- CMD`).
    fn init_does_not_reveal_host_paths(env) {
        env.import_busybox("bb");
        let out = env
            .casco([
                "run", "--rm", "--init", "bb", "sh", "-c",
                "tr '\\0' ' ' < /proc/1/cmdline; echo; readlink /proc/1/exe; true",
            ])
            .run()
            .success();
        let dir = env.dir().display().to_string();
        let bin = casco_bin().display().to_string();
        assert!(!out.stdout.contains(&dir) && !out.stdout.contains(&bin), "{}", out.report("PID 1 names host paths"));
    }
}

both! {
    /// podman `--init`: the init forwards `stop`'s SIGTERM to the command, so
    /// `stop -t 5` of `sleep 100` returns at once (no 5 s wait for SIGKILL) and
    /// the exit code is 143 (128 + SIGTERM). Without an init, sleep as PID 1
    /// would ignore SIGTERM.
    fn init_forwards_stop_signal(env) {
        env.import_busybox("bb");
        env.casco(["run", "-d", "--init", "--name", "i", "bb", "sleep", "100"]).run().success();
        let start = Instant::now();
        env.casco(["stop", "-t", "5", "i"]).run().success().stdout_is("i\n");
        assert!(start.elapsed() < Duration::from_secs(4), "stop took {:?}: SIGTERM was not forwarded", start.elapsed());
        let st = env.inspect_container("i")["State"].clone();
        assert_eq!(st["ExitCode"], json!(143));
        assert_eq!(st["Status"], json!("exited"));
        // SIGKILL goes to the whole PID namespace: 137.
        env.casco(["start", "i"]).run().success();
        env.casco(["kill", "i"]).run().success();
        env.casco(["wait", "i"]).run().success().stdout_is("137\n");
    }
}

both! {
    /// podman `--init`: an orphan that exits is reaped, never left as a
    /// zombie. The command makes an orphan (a subshell that exits at once,
    /// leaving `sh -c 'sleep 0.2; touch /tmp/done'` to PID 1) and then execs
    /// `sleep`. Without `--init` sleep is PID 1 and never reaps, so the
    /// orphan stays a zombie there (the control case, which shows the check
    /// can fail).
    fn init_reaps_zombies(env) {
        env.import_busybox("bb");
        let script = "(sh -c 'sleep 0.2; touch /tmp/done' &); exec sleep 1000";
        env.casco(["run", "-d", "--init", "--name", "with", "bb", "sh", "-c", script]).run().success();
        env.casco(["run", "-d", "--name", "without", "bb", "sh", "-c", script]).run().success();
        for name in ["with", "without"] {
            wait_until(&format!("the orphan in {name} to finish"), Duration::from_secs(20), || {
                exec_test(&env, name, "-e", "/tmp/done")
            });
        }
        let zombies = |name: &str| {
            ps_rows(&env, name).into_iter().filter(|r| r.get(2).is_some_and(|s| s.starts_with('Z'))).count()
        };
        wait_until("the zombie to show without --init", Duration::from_secs(10), || zombies("without") == 1);
        wait_until("the init to reap the orphan", Duration::from_secs(10), || zombies("with") == 0);
        let rows = ps_rows(&env, "with");
        assert!(
            rows.iter().all(|r| !r.get(2).is_some_and(|s| s.starts_with('Z'))),
            "zombie left with --init: {rows:?}"
        );
        env.casco(["rm", "-f", "-t", "0", "with", "without"]).run().success();
    }
}

both! {
    /// podman `--init`: `exec` into a container whose PID 1 is the init works
    /// like any other `exec` (it joins the command's namespaces).
    fn exec_into_an_init_container(env) {
        env.import_busybox("bb");
        env.casco(["run", "-d", "--init", "--name", "i", "bb", "sleep", "1000"]).run().success();
        env.casco(["exec", "i", "echo", "hi"]).run().success().stdout_is("hi\n");
        env.casco(["exec", "i", "sh", "-c", "exit 4"]).run().code(4);
        let out = env.casco(["exec", "i", "ps", "-o", "pid,args"]).run().success();
        assert!(out.stdout.contains("sleep 1000"), "{}", out.report("the command is not in the exec's PID namespace"));
        env.casco(["rm", "-f", "-t", "0", "i"]).run().success();
    }
}

// --- signals to a foreground run ---------------------------------------------------------

both! {
    /// podman (sig-proxy): SIGTERM to a foreground `run --init` process is
    /// passed to the container, whose init forwards it to `sleep`: `run` exits
    /// 143 within a few seconds and `ps -a` shows "Exited (143)"; with `--rm`
    /// the container is gone as well.
    fn sigterm_to_foreground_run_reaches_the_container(env) {
        env.import_busybox("bb");
        let mut fg = env.casco(["run", "--init", "--name", "s", "bb", "sleep", "100"]).spawn();
        env.wait_for_status("s", "running");
        let start = Instant::now();
        fg.signal(Signal::SIGTERM);
        let out = fg.wait();
        assert_eq!(out.status, 143, "{}", out.report("foreground run after SIGTERM"));
        assert!(start.elapsed() < Duration::from_secs(5), "run took {:?} to exit after SIGTERM", start.elapsed());
        let v = env.casco(["ps", "-a", "--format", "json"]).run().success().json();
        assert_eq!(v[0]["Names"], json!(["s"]));
        assert!(v[0]["Status"].as_str().unwrap_or("").starts_with("Exited (143)"), "{}", v[0]);
        env.casco(["rm", "s"]).run().success();

        let mut fg = env.casco(["run", "--rm", "--init", "--name", "r", "bb", "sleep", "100"]).spawn();
        env.wait_for_status("r", "running");
        fg.signal(Signal::SIGTERM);
        let out = fg.wait();
        assert_eq!(out.status, 143, "{}", out.report("foreground run --rm after SIGTERM"));
        assert_no_leftovers(&env);
    }
}

both! {
    /// podman (sig-proxy): a signal the container handles itself comes
    /// through too: SIGUSR1 to a foreground `run` whose command traps USR1
    /// (exit 42) makes `run` exit 42.
    fn signals_to_foreground_run_are_proxied(env) {
        env.import_busybox("bb");
        let script = "trap 'exit 42' USR1; touch /tmp/ready; while :; do sleep 0.1; done";
        let mut fg = env.casco(["run", "--name", "p", "bb", "sh", "-c", script]).spawn();
        env.wait_for_status("p", "running");
        wait_until("the trap to be set", Duration::from_secs(10), || {
            exec_test(&env, "p", "-e", "/tmp/ready")
        });
        fg.signal(Signal::SIGUSR1);
        assert_eq!(fg.wait().status, 42);
        assert_eq!(env.inspect_container("p")["State"]["ExitCode"], json!(42));
    }
}

// --- crash safety ---------------------------------------------------------------------------

both! {
    /// SIGKILL to a detached container's monitor (`State.ConmonPid`) takes
    /// the container down with it (its first process dies), `ps -a` shows it
    /// Exited, not running, `rm` (without -f) removes it, and nothing is left.
    fn killing_the_monitor_stops_the_container(env) {
        env.import_busybox("bb");
        env.casco(["run", "-d", "--name", "k", "bb", "sleep", "1000"]).run().success();
        let st = env.inspect_container("k")["State"].clone();
        let monitor = st["ConmonPid"].as_i64().unwrap_or(0);
        let pid = st["Pid"].as_i64().unwrap_or(0);
        assert!(monitor > 0 && pid > 0 && monitor != pid, "ConmonPid {monitor}, Pid {pid}");
        kill(Pid::from_raw(monitor as i32), Signal::SIGKILL).unwrap();
        wait_until("the container's process to die with its monitor", Duration::from_secs(10), || is_dead(pid));
        wait_until("ps -a to show k exited", Duration::from_secs(10), || {
            let v = env.casco(["ps", "-a", "--format", "json"]).run().success().json();
            v[0]["State"] == json!("exited")
        });
        let v = env.casco(["ps", "-a", "--format", "json"]).run().success().json();
        assert!(v[0]["Status"].as_str().unwrap_or("").starts_with("Exited ("), "{}", v[0]);
        assert_eq!(env.container_status("k"), "exited");
        env.casco(["rm", "k"]).run().success().stdout_is("k\n");
        assert_no_leftovers(&env);
    }
}

both! {
    /// A foreground `run` SIGKILLed at every point of its start-up (0 to 19
    /// ms after spawning; only casco itself is killed, not its process group)
    /// leaves nothing that cannot be cleaned: `ps -a` works, `rm -af` and
    /// `system reset -f` succeed, and no mount and no process is left.
    fn sigkill_during_startup_leaves_nothing(env) {
        env.import_busybox("bb");
        for ms in 0..20 {
            let mut fg = env.casco(["run", "bb", "sleep", "100"]).spawn();
            std::thread::sleep(Duration::from_millis(ms));
            fg.signal(Signal::SIGKILL);
            let out = fg.wait();
            assert_eq!(out.status, 137, "{}", out.report(&format!("run killed after {ms} ms")));
        }
        // Nothing started by a killed run may live on (the container dies
        // with its casco): a straggler would also hold its container's lock
        // and hang every command below, so it is named and ended here.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut left = leftover_processes(env.dir());
        while !left.is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            left = leftover_processes(env.dir());
        }
        if !left.is_empty() {
            let mut described = Vec::new();
            for line in &left {
                let pid = line
                    .strip_prefix("pid ")
                    .and_then(|r| r.split([' ', ':']).next())
                    .and_then(|p| p.parse().ok());
                if let Some(pid) = pid {
                    described.push(format!("{line} [{}]", describe_process(pid)));
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
            panic!("processes outlived their killed `casco run` (now killed):\n  {}", described.join("\n  "));
        }
        env.casco(["ps", "-a"]).run().success();
        env.casco(["rm", "-af", "-t", "0"]).run().success();
        env.casco(["ps", "-aq"]).run().success().stdout_is("");
        env.casco(["system", "reset", "-f"]).run().success();
        assert_no_leftovers(&env);
    }
}
