//! `run`/`create` options not covered in run.rs: labels, stop signal and
//! timeout (flags and the image's STOPSIGNAL), `--mount`, log drivers and
//! `--log-opt max-size`, `--env-file`, `--hostname`, `--group-add`,
//! `--network host`.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;

/// Names (first of `Names`) of `ps -a --format json` with extra args.
fn ps_names(env: &TestEnv, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["ps", "-a", "--format", "json"];
    args.extend_from_slice(extra);
    let out = env.casco(&args).run().success();
    let v = out.json();
    v.as_array()
        .unwrap_or_else(|| panic!("{}", out.report("expected a JSON array")))
        .iter()
        .map(|c| c["Names"][0].as_str().unwrap_or_default().to_string())
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

/// Asserts that the store holds no container at all.
#[track_caller]
fn assert_no_container(env: &TestEnv) {
    env.casco(["ps", "-aq"]).run().success().stdout_is("");
    assert_eq!(env.stored_containers(), Vec::<String>::new());
}

// --- labels, stop signal, stop timeout ------------------------------------------------

both! {
    /// podman 4.3.1: `--label k=v --label other=x` shows in inspect
    /// Config.Labels and in `ps --filter label=k=v` (not `label=k=w`);
    /// `--stop-signal SIGINT --stop-timeout 3` show as Config.StopSignal 2 and
    /// Config.StopTimeout 3, and `stop` (no -t) of `sleep` (PID 1 ignores
    /// SIGINT) kills after those 3 s, not the default 10: ExitCode 137.
    fn labels_and_stop_settings(env) {
        env.import_busybox("bb");
        env.casco([
            "run", "-d", "--name", "l", "--label", "k=v", "--label", "other=x", "--stop-signal", "SIGINT",
            "--stop-timeout", "3", "bb", "sleep", "1000",
        ])
        .run()
        .success();
        env.casco(["create", "--name", "plain", "bb", "true"]).run().success();
        let c = env.inspect_container("l");
        assert_eq!(c["Config"]["Labels"], json!({"k": "v", "other": "x"}));
        assert_eq!(c["Config"]["StopSignal"], json!(2));
        assert_eq!(c["Config"]["StopTimeout"], json!(3));
        let plain = env.inspect_container("plain");
        assert_eq!(plain["Config"]["StopSignal"], json!(15));
        assert_eq!(plain["Config"]["StopTimeout"], json!(10));
        assert_eq!(ps_names(&env, &["--filter", "label=k=v"]), ["l"]);
        assert_eq!(ps_names(&env, &["--filter", "label=k"]), ["l"]);
        assert!(ps_names(&env, &["--filter", "label=k=w"]).is_empty());
        let start = Instant::now();
        env.casco(["stop", "l"]).run().success().stdout_is("l\n");
        let took = start.elapsed();
        assert!(took >= Duration::from_secs(3) && took < Duration::from_secs(8), "stop took {took:?}, want ~3 s");
        assert_eq!(env.inspect_container("l")["State"]["ExitCode"], json!(137));
    }
}

both! {
    /// podman 4.3.1: `import --change "STOPSIGNAL SIGUSR1"` sets the image's
    /// stop signal; a container of that image gets Config.StopSignal 10, and
    /// `stop` sends SIGUSR1: a container trapping USR1 exits at once with its
    /// own code (42). `--stop-signal` overrides the image's.
    fn image_stop_signal_is_used_by_stop(env) {
        env.casco(["import", "--change", "STOPSIGNAL SIGUSR1", busybox_tar().to_str().unwrap(), "usr1"])
            .run()
            .success();
        let script = "trap 'exit 42' USR1; trap 'exit 43' TERM; touch /tmp/ready; while :; do sleep 0.1; done";
        env.casco(["run", "-d", "--name", "u", "usr1", "sh", "-c", script]).run().success();
        env.casco(["run", "-d", "--name", "t", "--stop-signal", "TERM", "usr1", "sh", "-c", script]).run().success();
        for name in ["u", "t"] {
            wait_until(&format!("the traps in {name}"), Duration::from_secs(10), || {
                exec_test(&env, name, "-e", "/tmp/ready")
            });
        }
        assert_eq!(env.inspect_container("u")["Config"]["StopSignal"], json!(10));
        let start = Instant::now();
        env.casco(["stop", "u"]).run().success();
        assert!(start.elapsed() < Duration::from_secs(5), "stop took {:?}", start.elapsed());
        assert_eq!(env.inspect_container("u")["State"]["ExitCode"], json!(42));
        env.casco(["stop", "t"]).run().success();
        assert_eq!(env.inspect_container("t")["State"]["ExitCode"], json!(43));
    }
}

// --- --mount ------------------------------------------------------------------------------

both! {
    /// podman 4.3.1: `--mount type=bind,source=DIR,destination=/v,ro` shows the
    /// host's files and refuses writes (touch exits 1, "Read-only file
    /// system"); `src=`/`dst=`/`target=` spellings work too; without ro,
    /// writes reach the host.
    fn mount_bind(env) {
        env.import_busybox("bb");
        let vol = env.mkdir("vol");
        env.write_file("vol/f", "hostdata\n");
        let ro = format!("type=bind,source={},destination=/v,ro", vol.display());
        let out = env.casco(["run", "--rm", "--mount", &ro, "bb", "sh", "-c", "cat /v/f; touch /v/new"]).run().code(1);
        assert_eq!(out.stdout, "hostdata\n", "{}", out.report("bind mount content"));
        assert!(out.stderr.contains("Read-only file system"), "{}", out.report("want EROFS"));
        assert!(!vol.join("new").exists());
        let rw = format!("type=bind,src={},target=/v", vol.display());
        env.casco(["run", "--rm", "--mount", &rw, "bb", "sh", "-c", "echo written > /v/new"]).run().success();
        assert_eq!(fs::read_to_string(vol.join("new")).unwrap(), "written\n");
        let rw = format!("type=bind,source={},dst=/v", vol.display());
        env.casco(["run", "--rm", "--mount", &rw, "bb", "cat", "/v/new"]).run().success().stdout_is("written\n");
        assert_no_leftovers(&env);
    }
}

both! {
    /// podman 4.3.1: `--mount type=tmpfs,destination=/t,tmpfs-size=1m` mounts
    /// a tmpfs of 1 MiB at /t (`df -k` says 1024 blocks).
    fn mount_tmpfs_size(env) {
        env.import_busybox("bb");
        let out = env
            .casco([
                "run", "--rm", "--mount", "type=tmpfs,destination=/t,tmpfs-size=1m", "bb", "sh", "-c",
                "grep ' /t ' /proc/mounts; df -k /t",
            ])
            .run()
            .success();
        let lines = out.lines();
        assert!(lines.first().is_some_and(|l| l.starts_with("tmpfs /t tmpfs ")), "{}", out.report("no tmpfs at /t"));
        let blocks: Vec<&str> = lines.last().map(|l| l.split_whitespace().collect()).unwrap_or_default();
        assert_eq!(blocks.get(1).copied(), Some("1024"), "{}", out.report("want a 1024 KiB tmpfs"));
    }
}

both! {
    /// podman 4.3.1: a bad `--mount` exits 125 with a message and leaves no
    /// container: no destination, an unknown type, a relative destination, a
    /// bind with no source, an unknown option; `-v` with a missing source too.
    fn bad_mounts_are_125(env) {
        env.import_busybox("bb");
        let vol = env.mkdir("vol");
        let v = vol.display();
        let bad = [
            format!("type=bind,source={v}"),
            "type=nosuch,destination=/x".to_string(),
            format!("type=bind,source={v},destination=relative"),
            "type=tmpfs,destination=relative".to_string(),
            "type=bind,destination=/x".to_string(),
            format!("type=bind,source={v},destination=/x,bogus=1"),
        ];
        for m in &bad {
            env.casco(["run", "--rm", "--mount", m, "bb", "true"]).run().code(125).says_why();
            env.casco(["create", "--name", "c", "--mount", m, "bb", "true"]).run().code(125).says_why();
            assert_no_container(&env);
        }
        let missing = format!("{}:/data", env.path("nonexistent").display());
        env.casco(["run", "--name", "c", "-v", &missing, "bb", "true"]).run().code(125).says_why();
        env.casco(["create", "--name", "c", "-v", &missing, "bb", "true"]).run().code(125).says_why();
        assert_no_container(&env);
        assert_no_leftovers(&env);
    }
}

// --- log drivers ---------------------------------------------------------------------------

both! {
    /// podman 4.3.1: with `--log-driver none` the foreground output still
    /// appears, but `logs` exits 125 saying the container keeps no logs.
    fn log_driver_none(env) {
        env.import_busybox("bb");
        env.casco(["run", "--name", "n", "--log-driver", "none", "bb", "echo", "visible"])
            .run()
            .success()
            .stdout_is("visible\n");
        env.casco(["logs", "n"]).run().code(125).says_why();
        env.casco(["run", "-d", "--name", "nd", "--log-driver", "none", "bb", "true"]).run().success();
        env.casco(["wait", "nd"]).run().success();
        env.casco(["logs", "nd"]).run().code(125).says_why();
    }
}

both! {
    /// podman 4.3.1: `--log-driver passthrough` hands the container casco's
    /// own stdout and stderr: the foreground output appears; `logs` exits 125;
    /// `run -d --log-driver passthrough` exits 125 (there is nothing to pass
    /// through to) and leaves no container.
    fn log_driver_passthrough(env) {
        env.import_busybox("bb");
        let out = env
            .casco(["run", "--name", "p", "--log-driver", "passthrough", "bb", "sh", "-c", "echo out; echo err >&2"])
            .run()
            .success();
        assert_eq!(out.stdout, "out\n", "{}", out.report("passthrough stdout"));
        assert!(out.stderr.contains("err\n"), "{}", out.report("passthrough stderr"));
        env.casco(["logs", "p"]).run().code(125).says_why();
        env.casco(["rm", "p"]).run().success();
        env.casco(["run", "-d", "--log-driver", "passthrough", "bb", "true"]).run().code(125).says_why();
        assert_no_container(&env);
        env.casco(["run", "--rm", "--log-driver", "bogus", "bb", "true"]).run().code(125).says_why();
        assert_no_container(&env);
    }
}

/// The log file of container `name` (HostConfig.LogConfig.Path).
fn log_path(env: &TestEnv, name: &str) -> PathBuf {
    let c = env.inspect_container(name);
    PathBuf::from(
        c["HostConfig"]["LogConfig"]["Path"]
            .as_str()
            .unwrap_or_else(|| panic!("no LogConfig.Path: {c}")),
    )
}

both! {
    /// podman 4.3.1 (conmon): `--log-opt max-size=1k` caps the log file: a
    /// container that prints ~50 KB (800 lines of 64 bytes, in bursts) still
    /// shows all of it in the foreground, but the log file never grows past
    /// max-size plus one record (watched while the container runs), and
    /// `logs` returns at most a few KB, ending with the last line.
    fn log_max_size(env) {
        env.import_busybox("bb");
        let script = "i=0; while [ $i -lt 800 ]; do \
                          printf 'line %04d abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopq\\n' $i; \
                          i=$((i+1)); [ $((i % 100)) = 0 ] && sleep 0.1; \
                      done; true";
        let mut fg = env.casco(["run", "--name", "big", "--log-opt", "max-size=1k", "bb", "sh", "-c", script])
            .timeout(Duration::from_secs(60))
            .spawn();
        // Watch the file while the container writes.
        let mut path = None;
        let mut biggest = 0u64;
        while fg.try_status().is_none() {
            if path.is_none() {
                let out = env
                    .casco(["container", "inspect", "--format", "{{.HostConfig.LogConfig.Path}}", "big"])
                    .run();
                if out.status == 0 && !out.stdout_trim().is_empty() {
                    path = Some(PathBuf::from(out.stdout_trim()));
                }
            }
            if let Some(p) = &path {
                biggest = biggest.max(fs::metadata(p).map_or(0, |m| m.len()));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let out = fg.wait().success();
        assert_eq!(out.stdout.lines().count(), 800, "{}", out.report("the foreground output is not capped"));
        let path = log_path(&env, "big");
        let size = fs::metadata(&path).map_or(0, |m| m.len());
        // A k8s-file record is "<timestamp> stdout F <line>\n": ~100 bytes here.
        let bound = 1024 + 200;
        assert!(size <= bound, "log file is {size} bytes at the end, max-size is 1k");
        assert!(biggest <= bound, "log file reached {biggest} bytes while the container ran, max-size is 1k");
        let logs = env.casco(["logs", "big"]).run().success();
        assert!(logs.stdout.len() <= 4096, "{}", logs.report("logs returned more than a few KB"));
        let last = "line 0799 abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopq\n";
        assert!(logs.stdout.ends_with(last), "{}", logs.report("the last line is missing"));
        env.casco(["run", "--rm", "--log-opt", "max-size=bogus", "bb", "true"]).run().code(125).says_why();
    }
}

// --- environment, hostname, groups, network ----------------------------------------------

both! {
    /// podman 4.3.1 `--env-file`: `# comments` (indented too) and blank lines
    /// are skipped, NAME=VALUE keeps everything after the first `=` (spaces,
    /// more `=`), `NAME=` is empty, a bare NAME copies casco's environment and
    /// is left out when casco has none; `-e` wins over the file.
    fn env_file(env) {
        env.import_busybox("bb");
        let file = env.write_file(
            "envf",
            "# comment\n\nA=1\n  # indented comment\nB=two words\nC=x=y\nEMPTY=\nFROMHOST\nMISSING\nOVER=file\n",
        );
        let out = env
            .casco(["run", "--rm", "--env-file", file.to_str().unwrap(), "-e", "OVER=flag", "bb", "env"])
            .env("FROMHOST", "hv")
            .run()
            .success();
        let vars: BTreeSet<&str> = out.lines().into_iter().collect();
        for want in ["A=1", "B=two words", "C=x=y", "EMPTY=", "FROMHOST=hv", "OVER=flag"] {
            assert!(vars.contains(want), "{}", out.report(&format!("{want} missing")));
        }
        for l in &vars {
            let unexpected =
                l.starts_with("MISSING") || l.starts_with('#') || l.contains("comment") || *l == "OVER=file";
            assert!(!unexpected, "{}", out.report(&format!("unexpected {l:?}")));
        }
        env.casco(["run", "--rm", "--env-file", env.path("nosuch").to_str().unwrap(), "bb", "true"])
            .run()
            .code(125)
            .says_why();
        assert_no_container(&env);
    }
}

both! {
    /// podman 4.3.1: `--hostname myhost` (the long flag) sets `hostname`,
    /// $HOSTNAME, /etc/hostname and inspect Config.Hostname.
    fn hostname_long_flag(env) {
        env.import_busybox("bb");
        let out = env
            .casco([
                "run", "--name", "h", "--hostname", "myhost", "bb", "sh", "-c",
                "hostname; echo $HOSTNAME; head -n1 /etc/hostname",
            ])
            .run()
            .success();
        assert_eq!(out.lines(), ["myhost", "myhost", "myhost"], "{}", out.stdout);
        assert_eq!(env.inspect_container("h")["Config"]["Hostname"], json!("myhost"));
    }
}

both! {
    /// podman 4.3.1: `--group-add` takes names and numeric IDs, repeated:
    /// root gets `0 10 1234`; `-u tester` keeps its own groups and gets the
    /// added ones (`1000 10 1234`); an unknown group name exits 126, as an
    /// unknown `-u` user does.
    fn group_add_by_name_and_id(env) {
        env.import_busybox("bb");
        let ids = |out: Output| -> BTreeSet<String> { out.stdout.split_whitespace().map(String::from).collect() };
        let got = ids(
            env.casco(["run", "--rm", "--group-add", "wheel", "--group-add", "1234", "bb", "id", "-G"])
                .run()
                .success(),
        );
        assert_eq!(got, ["0", "10", "1234"].map(String::from).into());
        let got = ids(
            env.casco([
                "run", "--rm", "-u", "tester", "--group-add", "1234", "--group-add", "nogroup", "bb", "id", "-G",
            ])
                .run()
                .success(),
        );
        assert_eq!(got, ["1000", "10", "1234", "65534"].map(String::from).into());
        env.casco(["run", "--rm", "--group-add", "nosuchgroup", "bb", "true"]).run().code(126).says_why();
    }
}

/// Interface names in a /proc/net/dev listing.
fn interfaces(net_dev: &str) -> BTreeSet<String> {
    net_dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split_once(':').map(|(name, _)| name.trim().to_string()))
        .collect()
}

both! {
    /// podman 4.3.1: `--network host` shares the host's network namespace:
    /// the container lists exactly the host's interfaces; `--network none`
    /// only `lo`; an unknown mode exits 125.
    fn network_host_and_none(env) {
        env.import_busybox("bb");
        let host = interfaces(&fs::read_to_string("/proc/net/dev").unwrap());
        let out = env.casco(["run", "--rm", "--network", "host", "bb", "cat", "/proc/net/dev"]).run().success();
        assert_eq!(interfaces(&out.stdout), host, "{}", out.stdout);
        let out = env.casco(["run", "--rm", "--net", "none", "bb", "cat", "/proc/net/dev"]).run().success();
        assert_eq!(interfaces(&out.stdout), BTreeSet::from(["lo".to_string()]), "{}", out.stdout);
        env.casco(["run", "--rm", "--network", "nosuchmode", "bb", "true"]).run().code(125).says_why();
        assert_no_container(&env);
    }
}
