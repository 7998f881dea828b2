//! Tests for the container lifecycle verbs: `create`, `start`, `stop`, `kill`,
//! `restart`, `rm`, `wait`, `ps` (table, JSON, filters), `inspect`, `logs`,
//! `exec`, `top`, `rename`, `export`, `container prune`. Expected values are what
//! podman 4.3.1 printed (tests/fixtures/podman-reference.md, "Lifecycle").

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;

/// A container that exits with `code` as soon as it gets SIGTERM.
const TRAP_TERM: &str = "trap 'exit 7' TERM; while :; do sleep 0.1; done";

/// Names (first of `Names`) of `ps -a --format json` plus `extra` args, in
/// the order printed.
fn ps_names(env: &TestEnv, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["ps", "-a", "--format", "json"];
    args.extend_from_slice(extra);
    let out = env.casco(&args).run().success();
    let v = out.json();
    let arr = v
        .as_array()
        .unwrap_or_else(|| panic!("{}", out.report("expected a JSON array")));
    arr.iter()
        .map(|c| c["Names"][0].as_str().unwrap_or_default().to_string())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

// --- create / start -------------------------------------------------------------

both! {
    /// podman 4.3.1: `create` prints the 64-hex ID; the container is "created":
    /// Running false, Pid 0, ExitCode 0, StartedAt and FinishedAt
    /// "0001-01-01T00:00:00Z"; `ps` (running only) does not list it, `ps -a`
    /// shows State "created", Status "Created".
    fn create_makes_a_created_container(env) {
        env.import_busybox("bb");
        let out = env.casco(["create", "--name", "c1", "bb", "sleep", "1000"]).run().success();
        assert!(out.stdout.ends_with('\n') && is_hex(out.stdout_trim(), 64), "{}", out.report("expected 64 hex"));
        let c = env.inspect_container("c1");
        assert_eq!(c["Id"], json!(out.stdout_trim()));
        let st = &c["State"];
        assert_eq!(st["Status"], json!("created"));
        assert_eq!(st["Running"], json!(false));
        assert_eq!(st["Pid"], json!(0));
        assert_eq!(st["ExitCode"], json!(0));
        assert_eq!(st["StartedAt"], json!("0001-01-01T00:00:00Z"));
        assert_eq!(st["FinishedAt"], json!("0001-01-01T00:00:00Z"));
        env.casco(["ps", "-q"]).run().success().stdout_is("");
        let v = env.casco(["ps", "-a", "--format", "json"]).run().success().json();
        assert_eq!(v[0]["State"], json!("created"));
        assert_eq!(v[0]["Status"], json!("Created"));
    }
}

both! {
    /// podman 4.3.1: `start c1` prints `c1` and the container runs; starting it
    /// again exits 0 and prints nothing; `start nosuch` exits 125.
    fn start_runs_a_created_container(env) {
        env.import_busybox("bb");
        env.casco(["create", "--name", "c1", "bb", "sleep", "1000"]).run().success();
        env.casco(["start", "c1"]).run().success().stdout_is("c1\n");
        let st = env.inspect_container("c1")["State"].clone();
        assert_eq!(st["Status"], json!("running"));
        assert_eq!(st["Running"], json!(true));
        assert!(st["Pid"].as_u64().is_some_and(|p| p > 0), "Pid {}", st["Pid"]);
        assert!(is_rfc3339(st["StartedAt"].as_str().unwrap_or("")), "StartedAt {}", st["StartedAt"]);
        env.casco(["start", "c1"]).run().success().stdout_is("");
        env.casco(["start", "nosuch"]).run().code(125).says_why();
    }
}

// --- stop / kill / restart -------------------------------------------------------

both! {
    /// podman 4.3.1: `stop -t 2` of `sleep` (PID 1 ignores SIGTERM) prints the
    /// name, sends SIGKILL after 2 s: ExitCode 137, Status "exited", ps Status
    /// "Exited (137) ..."; stopping it again exits 0 and prints the name.
    fn stop_kills_after_the_timeout(env) {
        env.import_busybox("bb");
        env.casco(["run", "-d", "--name", "c1", "bb", "sleep", "1000"]).run().success();
        let start = Instant::now();
        env.casco(["stop", "-t", "2", "c1"]).run().success().stdout_is("c1\n");
        assert!(start.elapsed() >= Duration::from_secs(2), "stop returned before the timeout");
        let st = env.inspect_container("c1")["State"].clone();
        assert_eq!(st["Status"], json!("exited"));
        assert_eq!(st["ExitCode"], json!(137));
        assert_eq!(st["Pid"], json!(0));
        assert!(is_rfc3339(st["FinishedAt"].as_str().unwrap_or("")), "FinishedAt {}", st["FinishedAt"]);
        assert_ne!(st["FinishedAt"], json!("0001-01-01T00:00:00Z"));
        let v = env.casco(["ps", "-a", "--format", "json"]).run().success().json();
        assert!(v[0]["Status"].as_str().unwrap_or("").starts_with("Exited (137) "), "{}", v[0]["Status"]);
        env.casco(["stop", "c1"]).run().success().stdout_is("c1\n");
        env.casco(["stop", "nosuch"]).run().code(125).says_why();
    }
}

both! {
    /// podman 4.3.1: `stop` sends SIGTERM first: a container that exits 7 on
    /// SIGTERM stops at once (0.36 s) with ExitCode 7.
    fn stop_sends_sigterm_first(env) {
        env.import_busybox("bb");
        env.casco(["run", "-d", "--name", "t", "bb", "sh", "-c", TRAP_TERM]).run().success();
        // The trap must be set before the signal comes.
        std::thread::sleep(Duration::from_millis(300));
        let start = Instant::now();
        env.casco(["stop", "t"]).run().success().stdout_is("t\n");
        assert!(start.elapsed() < Duration::from_secs(5), "stop took {:?}", start.elapsed());
        assert_eq!(env.inspect_container("t")["State"]["ExitCode"], json!(7));
    }
}

both! {
    /// podman 4.3.1: `--stop-signal INT` makes `stop` send SIGINT (a trap exits
    /// 9; `wait` prints 9); inspect Config.StopSignal is 2 (podman 4 prints the
    /// number; later podman the name).
    fn stop_signal_flag(env) {
        env.import_busybox("bb");
        env.casco([
            "run", "-d", "--name", "t", "--stop-signal", "INT", "bb", "sh", "-c",
            "trap 'exit 9' INT; while :; do sleep 0.1; done",
        ])
        .run()
        .success();
        std::thread::sleep(Duration::from_millis(300));
        env.casco(["stop", "t"]).run().success();
        env.casco(["wait", "t"]).run().success().stdout_is("9\n");
        let sig = env.inspect_container("t")["Config"]["StopSignal"].clone();
        assert!(sig == json!(2) || sig == json!("SIGINT"), "StopSignal {sig}");
    }
}

both! {
    /// podman 4.3.1: `kill` sends SIGKILL by default and prints the name
    /// (ExitCode 137); `kill` of an exited container exits 125; `kill -s TERM`
    /// and `-s USR1` of `sleep` as PID 1 change nothing; `kill -s 9` works;
    /// `kill nosuch` exits 125.
    fn kill_signals(env) {
        env.import_busybox("bb");
        env.casco(["run", "-d", "--name", "c1", "bb", "sleep", "1000"]).run().success();
        env.casco(["kill", "c1"]).run().success().stdout_is("c1\n");
        env.casco(["wait", "c1"]).run().success().stdout_is("137\n");
        env.casco(["kill", "c1"]).run().code(125).says_why();
        env.casco(["start", "c1"]).run().success();
        env.casco(["kill", "-s", "TERM", "c1"]).run().success().stdout_is("c1\n");
        env.casco(["kill", "-s", "USR1", "c1"]).run().success();
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(env.container_status("c1"), "running");
        env.casco(["kill", "-s", "9", "c1"]).run().success();
        env.casco(["wait", "c1"]).run().success().stdout_is("137\n");
        env.casco(["kill", "nosuch"]).run().code(125).says_why();
    }
}

both! {
    /// podman 4.3.1: `restart` prints the name and the container runs again
    /// with a new process; RestartCount stays 0 (it counts restart-policy
    /// restarts only). `restart` of an exited container starts it.
    fn restart(env) {
        env.import_busybox("bb");
        env.casco(["run", "-d", "--name", "c1", "bb", "sh", "-c", TRAP_TERM]).run().success();
        let pid1 = env.inspect_container("c1")["State"]["Pid"].clone();
        std::thread::sleep(Duration::from_millis(300));
        env.casco(["restart", "-t", "5", "c1"]).run().success().stdout_is("c1\n");
        let c = env.inspect_container("c1");
        assert_eq!(c["State"]["Status"], json!("running"));
        assert_ne!(c["State"]["Pid"], pid1);
        assert_eq!(c["RestartCount"], json!(0));
        env.casco(["kill", "c1"]).run().success();
        env.casco(["wait", "c1"]).run().success();
        env.casco(["restart", "c1"]).run().success().stdout_is("c1\n");
        assert_eq!(env.container_status("c1"), "running");
    }
}

// --- rm / wait --------------------------------------------------------------------

both! {
    /// podman 4.3.1: `rm` of a running container exits 2 ("cannot remove ... as
    /// it is running"); `rm -f` prints the name and removes it; `rm nosuch` exits
    /// 1, `rm -i nosuch` and `rm -f nosuch` exit 0; `rm` of a created container
    /// prints its name; `rm -a` prints full IDs.
    fn rm(env) {
        env.import_busybox("bb");
        env.casco(["run", "-d", "--name", "c1", "bb", "sleep", "1000"]).run().success();
        env.casco(["rm", "c1"]).run().code(2).says_why();
        assert_eq!(env.container_status("c1"), "running");
        env.casco(["rm", "-f", "-t", "0", "c1"]).run().success().stdout_is("c1\n");
        env.casco(["rm", "nosuch"]).run().code(1).says_why();
        env.casco(["rm", "-i", "nosuch"]).run().success();
        env.casco(["rm", "-f", "nosuch"]).run().success();
        env.casco(["create", "--name", "c2", "bb", "true"]).run().success();
        env.casco(["rm", "c2"]).run().success().stdout_is("c2\n");
        let a = env.casco(["create", "bb", "true"]).run().success().stdout_trim().to_string();
        let b = env.casco(["run", "-d", "bb", "true"]).run().success().stdout_trim().to_string();
        env.casco(["wait", &b]).run().success();
        let out = env.casco(["rm", "-a"]).run().success();
        assert_eq!(sorted(out.lines().iter().map(|s| s.to_string()).collect()), sorted(vec![a, b]));
        assert_no_leftovers(&env);
    }
}

both! {
    /// podman 4.3.1: `wait` prints the exit code once the container stops, and
    /// again for a stopped one; `wait nosuch` exits 125; `wait` of a created
    /// (never started) container returns at once with 0.
    fn wait_prints_the_exit_code(env) {
        env.import_busybox("bb");
        env.casco(["run", "-d", "--name", "w1", "bb", "sh", "-c", "sleep 1; exit 5"]).run().success();
        env.casco(["wait", "w1"]).run().success().stdout_is("5\n");
        env.casco(["wait", "w1"]).run().success().stdout_is("5\n");
        env.casco(["wait", "nosuch"]).run().code(125).says_why();
        env.casco(["create", "--name", "w2", "bb", "true"]).run().success();
        env.casco(["wait", "w2"]).timeout(Duration::from_secs(10)).run().success().stdout_is("0\n");
    }
}

// --- ps ---------------------------------------------------------------------------

both! {
    /// podman 4.3.1 `ps -a`:
    /// `CONTAINER ID  IMAGE                COMMAND       CREATED                 STATUS                   PORTS       NAMES`
    /// `1927d57ddc00  localhost/bb:latest  sleep 1000    Less than a second ago  Up 1 second ago                      web`
    /// `7f80a7e29b83  localhost/bb:latest  echo hi       Less than a second ago  Created                              made`
    /// `f4b83d808fbe  localhost/bb:latest  sh -c exit 2  Less than a second ago  Exited (2) 1 second ago              done`
    /// Without -a only running ones; with no container only the header.
    fn ps_table(env) {
        env.import_busybox("bb");
        let header = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"];
        let t = env.casco(["ps", "-a"]).run().success().table();
        assert_eq!(t.columns, header);
        assert!(t.rows.is_empty());
        env.casco(["run", "-d", "--name", "web", "bb", "sleep", "1000"]).run().success();
        env.casco(["create", "--name", "made", "bb", "echo", "hi"]).run().success();
        env.casco(["run", "--name", "done", "bb", "sh", "-c", "exit 2"]).run().code(2);
        let out = env.casco(["ps", "-a"]).run().success();
        let t = out.table();
        assert_eq!(t.columns, header, "{}", out.stdout);
        assert_eq!(t.column("NAMES"), ["web", "made", "done"], "{}", out.stdout);
        for row in &t.rows {
            assert!(is_hex(&row["CONTAINER ID"], 12), "{}", out.stdout);
            assert_eq!(row["IMAGE"], "localhost/bb:latest", "{}", out.stdout);
            assert!(row["CREATED"].ends_with("ago"), "{}", out.stdout);
            assert_eq!(row["PORTS"], "", "{}", out.stdout);
        }
        assert_eq!(t.column("COMMAND"), ["sleep 1000", "echo hi", "sh -c exit 2"], "{}", out.stdout);
        let status = t.column("STATUS");
        assert!(status[0].starts_with("Up ") && status[0].ends_with(" ago"), "{}", out.stdout);
        assert_eq!(status[1], "Created", "{}", out.stdout);
        assert!(status[2].starts_with("Exited (2) ") && status[2].ends_with(" ago"), "{}", out.stdout);
        let t = env.casco(["ps"]).run().success().table();
        assert_eq!(t.column("NAMES"), ["web"]);
    }
}

both! {
    /// podman 4.3.1: `ps -q` prints 12-hex IDs of running containers, `-aq` of
    /// all, `--no-trunc` the 64-hex IDs (also in the table).
    fn ps_ids(env) {
        env.import_busybox("bb");
        let running = env.casco(["run", "-d", "bb", "sleep", "1000"]).run().success().stdout_trim().to_string();
        let created = env.casco(["create", "bb", "true"]).run().success().stdout_trim().to_string();
        env.casco(["ps", "-q"]).run().success().stdout_is(&format!("{}\n", &running[..12]));
        let all = env.casco(["ps", "-aq"]).run().success();
        assert_eq!(sorted(all.lines().iter().map(|s| s.to_string()).collect()), sorted(vec![running[..12].to_string(), created[..12].to_string()]));
        let full = env.casco(["ps", "-aq", "--no-trunc"]).run().success();
        assert_eq!(sorted(full.lines().iter().map(|s| s.to_string()).collect()), sorted(vec![running.clone(), created.clone()]));
        let t = env.casco(["ps", "--no-trunc"]).run().success().table();
        assert_eq!(t.column("CONTAINER ID"), [running.as_str()]);
    }
}

both! {
    /// podman 4.3.1 `ps -a --format json` keys (per container): AutoRemove,
    /// Command (array), CreatedAt (string), Exited (bool), ExitedAt (number),
    /// ExitCode (number), Id (64 hex), Image, ImageID (64 hex), IsInfra, Labels
    /// (object or null), Mounts (array), Names (array), Namespaces, Networks, Pid
    /// (number, 0 unless running), Pod, PodName, Ports, Size, StartedAt (number),
    /// State ("running"/"created"/"exited"), Status, Created (Unix seconds).
    fn ps_json(env) {
        let image = env.import_busybox("bb");
        let image = image.trim_start_matches("sha256:");
        env.casco(["run", "-d", "--name", "web", "-l", "app=x", "bb", "sleep", "1000"]).run().success();
        env.casco(["create", "--name", "made", "bb", "echo", "hi"]).run().success();
        env.casco(["run", "--name", "done", "bb", "sh", "-c", "exit 2"]).run().code(2);
        let out = env.casco(["ps", "-a", "--format", "json"]).run().success();
        let v = out.json();
        let arr = v.as_array().unwrap_or_else(|| panic!("{}", out.report("expected an array")));
        assert_eq!(arr.len(), 3, "{}", out.stdout);
        let by_name = |n: &str| -> &Value {
            arr.iter().find(|c| c["Names"] == json!([n])).unwrap_or_else(|| panic!("{n} missing:\n{}", out.stdout))
        };
        for c in arr {
            assert_keys(
                c,
                "ps --format json",
                &[
                    ("AutoRemove", "bool"),
                    ("Command", "array"),
                    ("CreatedAt", "string"),
                    ("Exited", "bool"),
                    ("ExitedAt", "number"),
                    ("ExitCode", "number"),
                    ("Id", "string"),
                    ("Image", "string"),
                    ("ImageID", "string"),
                    ("Labels", "null|object"),
                    ("Mounts", "array"),
                    ("Names", "array"),
                    ("Pid", "number"),
                    ("StartedAt", "number"),
                    ("State", "string"),
                    ("Status", "string"),
                    ("Created", "number"),
                ],
            );
            assert!(is_hex(c["Id"].as_str().unwrap(), 64), "Id {}", c["Id"]);
            assert_eq!(c["Image"], json!("localhost/bb:latest"));
            assert_eq!(c["ImageID"], json!(image));
            let created = c["Created"].as_i64().unwrap();
            assert!((unix_now() - created).abs() < 300, "Created {created} is not now ({})", unix_now());
        }
        let web = by_name("web");
        assert_eq!(web["State"], json!("running"));
        assert_eq!(web["Command"], json!(["sleep", "1000"]));
        assert_eq!(web["Labels"], json!({"app": "x"}));
        assert!(web["Pid"].as_u64().is_some_and(|p| p > 0));
        assert_eq!(web["Exited"], json!(false));
        assert!(web["Status"].as_str().unwrap().starts_with("Up "));
        let made = by_name("made");
        assert_eq!(made["State"], json!("created"));
        assert_eq!(made["Status"], json!("Created"));
        assert_eq!(made["Pid"], json!(0));
        let done = by_name("done");
        assert_eq!(done["State"], json!("exited"));
        assert_eq!(done["ExitCode"], json!(2));
        assert_eq!(done["Exited"], json!(true));
        assert_eq!(done["Command"], json!(["sh", "-c", "exit 2"]));
        assert_eq!(done["Pid"], json!(0));
        assert!(done["ExitedAt"].as_i64().is_some_and(|t| (unix_now() - t).abs() < 300), "ExitedAt {}", done["ExitedAt"]);
    }
}

both! {
    /// podman 4.3.1: `ps` lists the oldest container first; `-l` shows the
    /// latest; `-n 2` the two latest (still oldest first).
    fn ps_order_latest_and_last(env) {
        env.import_busybox("bb");
        for n in ["o1", "o2", "o3"] {
            env.casco(["create", "--name", n, "bb", "true"]).run().success();
            // podman orders by creation time; keep the times apart.
            std::thread::sleep(Duration::from_millis(1100));
        }
        assert_eq!(ps_names(&env, &[]), ["o1", "o2", "o3"]);
        assert_eq!(ps_names(&env, &["-l"]), ["o3"]);
        assert_eq!(ps_names(&env, &["-n", "2"]), ["o2", "o3"]);
    }
}

both! {
    /// podman 4.3.1 `ps -a --filter`: status=running|exited|created,
    /// exited=CODE, name=SUBSTRING or regex, label=KEY, label=KEY=VALUE,
    /// ancestor=localhost/bb, id=PREFIX; the same filter repeated is OR,
    /// different filters AND; an unknown filter or status exits 125.
    fn ps_filters(env) {
        env.import_busybox("bb");
        env.casco(["run", "-d", "--name", "run1", "-l", "tier=web", "bb", "sleep", "1000"]).run().success();
        let cr1 = env.casco(["create", "--name", "cr1", "-l", "tier=db", "bb", "true"]).run().success().stdout_trim().to_string();
        env.casco(["run", "--name", "ex0", "bb", "true"]).run().success();
        env.casco(["run", "--name", "ex3", "bb", "sh", "-c", "exit 3"]).run().code(3);
        let f = |args: &[&str]| sorted(ps_names(&env, args));
        assert_eq!(f(&["--filter", "status=running"]), ["run1"]);
        assert_eq!(f(&["--filter", "status=exited"]), ["ex0", "ex3"]);
        assert_eq!(f(&["--filter", "status=created"]), ["cr1"]);
        assert_eq!(f(&["--filter", "exited=3"]), ["ex3"]);
        assert_eq!(f(&["--filter", "exited=0"]), ["ex0"]);
        assert_eq!(f(&["--filter", "name=ex"]), ["ex0", "ex3"]);
        assert_eq!(f(&["--filter", "name=^ex0$"]), ["ex0"]);
        assert_eq!(f(&["--filter", "label=tier"]), ["cr1", "run1"]);
        assert_eq!(f(&["--filter", "label=tier=db"]), ["cr1"]);
        assert_eq!(f(&["--filter", "ancestor=localhost/bb"]), ["cr1", "ex0", "ex3", "run1"]);
        assert_eq!(f(&["--filter", "status=exited", "--filter", "status=created"]), ["cr1", "ex0", "ex3"]);
        assert_eq!(f(&["--filter", "status=exited", "--filter", "name=ex3"]), ["ex3"]);
        assert_eq!(f(&["--filter", &format!("id={}", &cr1[..5])]), ["cr1"]);
        env.casco(["ps", "--filter", "bogus=1"]).run().code(125).says_why();
        env.casco(["ps", "-a", "--filter", "status=bogus"]).run().code(125).says_why();
    }
}

// --- inspect ----------------------------------------------------------------------

both! {
    /// podman 4.3.1 `inspect web` for `run -d --name web -l app=x -e FOO=bar bb
    /// sleep 1000` (trimmed): Id, Created (RFC 3339), Path "sleep", Args
    /// ["1000"], State {Status "running", Running true, Paused false,
    /// Restarting false, OOMKilled false, Dead false, Pid, ExitCode 0, Error "",
    /// StartedAt, FinishedAt "0001-01-01T00:00:00Z"}, Image (64 hex), ImageName
    /// "localhost/bb:latest", Name "web", RestartCount 0, Mounts [], Config
    /// {Hostname (short ID), User "", Env [FOO=bar, PATH=..., ...], Cmd
    /// ["sleep","1000"], Image "localhost/bb:latest", WorkingDir "/", Entrypoint
    /// "" (podman 4; an array in later podman), Labels {"app":"x"}, StopSignal 15},
    /// HostConfig {...}.
    fn inspect_container_fields(env) {
        let image = env.import_busybox("bb");
        let id = env
            .casco(["run", "-d", "--name", "web", "-l", "app=x", "-e", "FOO=bar", "bb", "sleep", "1000"])
            .run()
            .success()
            .stdout_trim()
            .to_string();
        let c = env.inspect_container("web");
        assert_keys(
            &c,
            "inspect",
            &[
                ("Id", "string"),
                ("Created", "string"),
                ("Path", "string"),
                ("Args", "array"),
                ("State", "object"),
                ("Image", "string"),
                ("ImageName", "string"),
                ("Name", "string"),
                ("RestartCount", "number"),
                ("Mounts", "array"),
                ("Config", "object"),
                ("HostConfig", "object"),
            ],
        );
        assert_eq!(c["Id"], json!(id));
        assert!(is_rfc3339(c["Created"].as_str().unwrap()), "Created {}", c["Created"]);
        assert_eq!(c["Path"], json!("sleep"));
        assert_eq!(c["Args"], json!(["1000"]));
        assert_eq!(c["Image"], json!(image.trim_start_matches("sha256:")));
        assert_eq!(c["ImageName"], json!("localhost/bb:latest"));
        assert_eq!(c["Name"], json!("web"));
        assert_eq!(c["RestartCount"], json!(0));
        assert_eq!(c["Mounts"], json!([]));
        let st = &c["State"];
        assert_keys(
            st,
            "inspect .State",
            &[
                ("Status", "string"),
                ("Running", "bool"),
                ("Paused", "bool"),
                ("Restarting", "bool"),
                ("OOMKilled", "bool"),
                ("Dead", "bool"),
                ("Pid", "number"),
                ("ExitCode", "number"),
                ("Error", "string"),
                ("StartedAt", "string"),
                ("FinishedAt", "string"),
            ],
        );
        assert_eq!(st["Status"], json!("running"));
        assert_eq!(st["Running"], json!(true));
        for k in ["Paused", "Restarting", "OOMKilled", "Dead"] {
            assert_eq!(st[k], json!(false), "State.{k}");
        }
        assert_eq!(st["Error"], json!(""));
        assert_eq!(st["FinishedAt"], json!("0001-01-01T00:00:00Z"));
        let cfg = &c["Config"];
        assert_keys(
            cfg,
            "inspect .Config",
            &[
                ("Hostname", "string"),
                ("User", "string"),
                ("Env", "array"),
                ("Cmd", "array"),
                ("Image", "string"),
                ("WorkingDir", "string"),
                ("Entrypoint", "string|array|null"),
                ("Labels", "object"),
                ("StopSignal", "number|string"),
            ],
        );
        assert_eq!(cfg["Hostname"], json!(&id[..12]));
        assert_eq!(cfg["User"], json!(""));
        let envs: Vec<&str> = cfg["Env"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert!(envs.contains(&"FOO=bar"), "Env {envs:?}");
        assert!(envs.iter().any(|e| e.starts_with("PATH=")), "Env {envs:?}");
        assert_eq!(cfg["Cmd"], json!(["sleep", "1000"]));
        assert_eq!(cfg["Image"], json!("localhost/bb:latest"));
        assert_eq!(cfg["WorkingDir"], json!("/"));
        let ep = &cfg["Entrypoint"];
        assert!(ep.is_null() || *ep == json!("") || *ep == json!([]), "Entrypoint {ep}");
        assert_eq!(cfg["Labels"], json!({"app": "x"}));
        assert!(cfg["StopSignal"] == json!(15) || cfg["StopSignal"] == json!("SIGTERM"), "StopSignal {}", cfg["StopSignal"]);
        // By ID prefix too, and through the generic `inspect`.
        assert_eq!(env.inspect_container(&id[..12])["Name"], json!("web"));
        assert_eq!(env.casco(["inspect", "web"]).run().success().json()[0]["Id"], json!(id));
    }
}

both! {
    /// podman 4.3.1: `inspect nosuch` prints `[]` and exits 125; `container
    /// inspect` of an image name exits 125; with one good and one missing name it
    /// prints the good one and exits 125.
    fn inspect_unknown(env) {
        env.import_busybox("bb");
        let out = env.casco(["inspect", "nosuch"]).run().code(125).says_why();
        assert_eq!(out.stdout_trim(), "[]", "{}", out.report("expected [] on stdout"));
        env.casco(["container", "inspect", "bb"]).run().code(125).says_why();
        env.casco(["create", "--name", "made", "bb", "true"]).run().success();
        env.casco(["inspect", "--format", "{{.Name}}", "made", "nosuch"])
            .run()
            .code(125)
            .stdout_is("made\n");
    }
}

both! {
    /// podman 4.3.1: `inspect --format '{{.State.ExitCode}} {{.State.Status}}'`
    /// prints `137 exited` for a killed container; one line per container.
    fn inspect_format_template(env) {
        env.import_busybox("bb");
        env.casco(["run", "-d", "--name", "k", "bb", "sleep", "1000"]).run().success();
        env.casco(["kill", "k"]).run().success();
        env.casco(["wait", "k"]).run().success();
        env.casco(["inspect", "--format", "{{.State.ExitCode}} {{.State.Status}}", "k"])
            .run()
            .success()
            .stdout_is("137 exited\n");
        env.casco(["create", "--name", "made", "bb", "true"]).run().success();
        env.casco(["inspect", "--type", "container", "--format", "{{.Name}}", "made", "k"])
            .run()
            .success()
            .stdout_is("made\nk\n");
    }
}

// --- logs -------------------------------------------------------------------------

both! {
    /// podman 4.3.1: `logs` writes the container's stdout lines to stdout and
    /// its stderr lines to stderr (`logs lg 2>/dev/null` gives o1 o2 o3,
    /// `2>&1 >/dev/null` gives e1 e2); `logs nosuch` exits 125.
    fn logs_keeps_streams_apart(env) {
        env.import_busybox("bb");
        env.casco(["run", "--name", "lg", "bb", "sh", "-c", "echo o1; echo e1 >&2; echo o2; echo e2 >&2; echo o3"])
            .run()
            .success();
        let out = env.casco(["logs", "lg"]).run().success();
        assert_eq!(out.stdout, "o1\no2\no3\n");
        assert_eq!(out.stderr, "e1\ne2\n");
        env.casco(["logs", "nosuch"]).run().code(125).says_why();
    }
}

both! {
    /// podman 4.3.1 for lines line1..line5: `--tail 2` gives line4 line5,
    /// `--tail 10` all five, `--tail 0` nothing.
    fn logs_tail(env) {
        env.import_busybox("bb");
        env.casco(["run", "--name", "lg", "bb", "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done"])
            .run()
            .success();
        env.casco(["logs", "--tail", "2", "lg"]).run().success().stdout_is("line4\nline5\n");
        env.casco(["logs", "--tail", "10", "lg"])
            .run()
            .success()
            .stdout_is("line1\nline2\nline3\nline4\nline5\n");
        env.casco(["logs", "--tail", "0", "lg"]).run().success().stdout_is("");
    }
}

both! {
    /// podman 4.3.1 `logs -t`: `2026-11-22T23:45:01.832618274Z o1`: an RFC 3339
    /// timestamp (nanoseconds), a space, the line.
    fn logs_timestamps(env) {
        env.import_busybox("bb");
        env.casco(["run", "--name", "lg", "bb", "sh", "-c", "echo one; echo two"]).run().success();
        let out = env.casco(["logs", "-t", "lg"]).run().success();
        let lines = out.lines();
        assert_eq!(lines.len(), 2, "{}", out.stdout);
        for (line, text) in lines.iter().zip(["one", "two"]) {
            let (ts, rest) = line.split_once(' ').unwrap_or_else(|| panic!("no timestamp in {line:?}"));
            assert!(is_rfc3339(ts), "timestamp {ts:?} in {line:?}");
            assert_eq!(rest, text);
        }
    }
}

both! {
    /// podman 4.3.1: output without a final newline is logged as it was
    /// (`printf "no newline"` → logs print exactly that).
    fn logs_keep_a_partial_line(env) {
        env.import_busybox("bb");
        env.casco(["run", "--name", "nonl", "bb", "printf", "no newline"]).run().success().stdout_is("no newline");
        env.casco(["logs", "nonl"]).run().success().stdout_is("no newline");
    }
}

both! {
    /// podman 4.3.1: `logs -f` streams while the container runs and returns
    /// when it exits.
    fn logs_follow(env) {
        env.import_busybox("bb");
        env.casco(["run", "-d", "--name", "fol", "bb", "sh", "-c", "echo start; sleep 3; echo end"]).run().success();
        let mut follow = env.casco(["logs", "-f", "fol"]).spawn();
        wait_until("`logs -f` to print the first line", Duration::from_secs(10), || {
            follow.stdout_so_far() == "start\n"
        });
        assert_eq!(follow.try_status(), None, "logs -f returned while the container runs");
        let out = follow.wait().success();
        assert_eq!(out.stdout, "start\nend\n");
        assert_eq!(env.container_status("fol"), "exited");
    }
}

// --- exec / top ---------------------------------------------------------------

both! {
    /// podman 4.3.1 `exec` into `run -d --name ex -e A=1 bb sleep 1000`: `echo
    /// hi` prints hi; `sh -c 'exit 4'` exits 4; /nonexistent 127; /etc/passwd
    /// 126; the container's environment is there and the process is not PID 1;
    /// `ps` shows `1 sleep`; `exec nosuch` exits 125.
    fn exec_runs_in_the_container(env) {
        env.import_busybox("bb");
        env.casco(["run", "-d", "--name", "ex", "-e", "A=1", "bb", "sleep", "1000"]).run().success();
        env.casco(["exec", "ex", "echo", "hi"]).run().success().stdout_is("hi\n");
        env.casco(["exec", "ex", "sh", "-c", "exit 4"]).run().code(4);
        env.casco(["exec", "ex", "/nonexistent"]).run().code(127).says_why();
        env.casco(["exec", "ex", "/etc/passwd"]).run().code(126).says_why();
        let out = env.casco(["exec", "ex", "sh", "-c", "echo $A; echo $$"]).run().success();
        let lines = out.lines();
        assert_eq!(lines[0], "1");
        assert_ne!(lines[1], "1", "exec'd process must not be PID 1");
        let out = env.casco(["exec", "ex", "ps", "-o", "pid,comm"]).run().success();
        assert!(out.lines().iter().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["1", "sleep"]), "{}", out.stdout);
        env.casco(["exec", "nosuch", "true"]).run().code(125).says_why();
    }
}

both! {
    /// podman 4.3.1: `exec -u tester -w /tmp -e B=2 ex sh -c 'id -u; pwd; echo
    /// $A$B'` prints 1000, /tmp, 12; `exec -i` passes stdin (`printf abc | exec -i
    /// ex cat` prints abc).
    fn exec_options(env) {
        env.import_busybox("bb");
        env.casco(["run", "-d", "--name", "ex", "-e", "A=1", "bb", "sleep", "1000"]).run().success();
        env.casco(["exec", "-u", "tester", "-w", "/tmp", "-e", "B=2", "ex", "sh", "-c", "id -u; pwd; echo $A$B"])
            .run()
            .success()
            .stdout_is("1000\n/tmp\n12\n");
        env.casco(["exec", "-i", "ex", "cat"]).stdin("abc").run().success().stdout_is("abc");
    }
}

both! {
    /// podman 4.3.1: `exec` into a container that is not running fails ("can
    /// only create exec sessions on running containers"); podman exits 255 there,
    /// casco's own-error code is 125: either is accepted.
    fn exec_into_a_stopped_container_fails(env) {
        env.import_busybox("bb");
        env.casco(["create", "--name", "cr", "bb", "true"]).run().success();
        let out = env.casco(["exec", "cr", "true"]).run().says_why();
        assert!(out.status == 125 || out.status == 255, "{}", out.report("expected 125 (or podman's 255)"));
    }
}

both! {
    /// podman 4.3.1 `top ex`:
    /// `USER        PID         PPID        %CPU        ELAPSED       TTY         TIME        COMMAND`
    /// `root        1           0           0.000       2.410916062s  ?           0s          sleep 1000 `
    /// (PIDs as the container sees them); `top ex pid comm args` has header
    /// `PID COMMAND COMMAND`; `top` of a created container exits 125.
    fn top(env) {
        env.import_busybox("bb");
        env.casco(["run", "-d", "--name", "ex", "bb", "sleep", "1000"]).run().success();
        let out = env.casco(["top", "ex"]).run().success();
        let t = out.table();
        assert_eq!(t.columns, ["USER", "PID", "PPID", "%CPU", "ELAPSED", "TTY", "TIME", "COMMAND"], "{}", out.stdout);
        assert_eq!(t.rows.len(), 1, "{}", out.stdout);
        let row = &t.rows[0];
        assert_eq!(row["USER"], "root");
        assert_eq!(row["PID"], "1");
        assert_eq!(row["PPID"], "0");
        assert_eq!(row["COMMAND"], "sleep 1000");
        let out = env.casco(["top", "ex", "pid", "comm", "args"]).run().success();
        let header: Vec<&str> = out.lines()[0].split_whitespace().collect();
        assert_eq!(header, ["PID", "COMMAND", "COMMAND"], "{}", out.stdout);
        let row: Vec<&str> = out.lines()[1].split_whitespace().collect();
        assert_eq!(row, ["1", "sleep", "sleep", "1000"], "{}", out.stdout);
        env.casco(["create", "--name", "cr", "bb", "true"]).run().success();
        env.casco(["top", "cr"]).run().code(125).says_why();
    }
}

// --- rename / export / prune / cidfile ------------------------------------------

both! {
    /// podman 4.3.1: `rename ex ex2` prints nothing and the container answers
    /// to the new name only; a name in use, an unknown container or an invalid
    /// name ("bad name!": names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*) exit 125.
    fn rename(env) {
        env.import_busybox("bb");
        env.casco(["run", "-d", "--name", "ex", "bb", "sleep", "1000"]).run().success();
        env.casco(["create", "--name", "cr", "bb", "true"]).run().success();
        env.casco(["rename", "ex", "ex2"]).run().success().stdout_is("");
        assert_eq!(env.inspect_container("ex2")["Name"], json!("ex2"));
        env.casco(["container", "inspect", "ex"]).run().code(125);
        assert_eq!(sorted(ps_names(&env, &[])), ["cr", "ex2"]);
        env.casco(["rename", "cr", "ex2"]).run().code(125).says_why();
        env.casco(["rename", "nosuch", "x"]).run().code(125).says_why();
        env.casco(["rename", "cr", "bad name!"]).run().code(125).says_why();
        // The running container still works under its new name.
        env.casco(["exec", "ex2", "true"]).run().success();
    }
}

/// Entry paths of a tar archive, without a leading "./".
fn tar_paths(bytes: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(bytes);
    archive
        .entries()
        .expect("export output is not a tar archive")
        .map(|e| {
            let e = e.expect("bad tar entry in export output");
            let p = e
                .path()
                .expect("bad path in export output")
                .to_string_lossy()
                .into_owned();
            p.strip_prefix("./").unwrap_or(&p).trim_end_matches('/').to_string()
        })
        .collect()
}

both! {
    /// podman 4.3.1: `export` writes the container's filesystem as a tar
    /// (paths like `bin/busybox`, no "./"): a file made in the container is in
    /// it, a deleted one is not; `export -o FILE` writes the same to a file.
    fn export(env) {
        env.import_busybox("bb");
        env.casco(["run", "-d", "--name", "ex", "bb", "sleep", "1000"]).run().success();
        env.casco(["exec", "ex", "sh", "-c", "echo data > /tmp/file; rm /etc/group"]).run().success();
        let out = env.casco(["export", "ex"]).run().success();
        let paths = tar_paths(&out.stdout_raw);
        for p in ["bin/busybox", "bin/sh", "etc/passwd", "tmp/file"] {
            assert!(paths.iter().any(|x| x == p), "{p} missing from export: {paths:?}");
        }
        assert!(!paths.iter().any(|x| x == "etc/group"), "deleted etc/group is in the export");
        env.mkdir("out");
        let file = env.path("out/exp.tar");
        env.casco(["export", "-o", file.to_str().unwrap(), "ex"]).run().success().stdout_is("");
        let mut from_file = tar_paths(&std::fs::read(&file).unwrap());
        let mut from_stdout = paths;
        from_file.sort();
        from_stdout.sort();
        assert_eq!(from_file, from_stdout);
    }
}

both! {
    /// podman 4.3.1: `container prune -f` removes stopped and created
    /// containers, prints their 64-hex IDs, and leaves running ones.
    fn container_prune(env) {
        env.import_busybox("bb");
        env.casco(["run", "-d", "--name", "up", "bb", "sleep", "1000"]).run().success();
        let made = env.casco(["create", "bb", "true"]).run().success().stdout_trim().to_string();
        let done = env.casco(["run", "-d", "bb", "true"]).run().success().stdout_trim().to_string();
        env.casco(["wait", &done]).run().success();
        let out = env.casco(["container", "prune", "-f"]).run().success();
        assert_eq!(sorted(out.lines().iter().map(|s| s.to_string()).collect()), sorted(vec![made, done]));
        assert_eq!(ps_names(&env, &[]), ["up"]);
    }
}

both! {
    /// podman 4.3.1: `create --cidfile F` writes the ID (no newline).
    fn create_cidfile(env) {
        env.import_busybox("bb");
        env.mkdir("out");
        let cid = env.path("out/cid");
        let id = env
            .casco(["create", "--cidfile", cid.to_str().unwrap(), "bb", "true"])
            .run()
            .success()
            .stdout_trim()
            .to_string();
        assert_eq!(std::fs::read_to_string(&cid).unwrap(), id);
    }
}
