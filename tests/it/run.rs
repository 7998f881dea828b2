//! Tests for `run`: exit codes, environment, user, working directory, hostname,
//! isolation (PID namespace, capabilities, masked and read-only paths, /dev),
//! standard input, terminals, mounts and `--rm`. Expected values are what podman
//! 4.3.1 (with runc) printed (tests/fixtures/podman-reference.md, "Run").

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use crate::common::*;

/// podman's default capability set, as /proc/PID/status prints it.
const DEFAULT_CAPS: &str = "00000000800405fb";

/// An image ID that cannot exist locally or be pulled.
const NO_SUCH_IMAGE: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// Runs `sh -c SCRIPT` in a fresh `--rm` container and returns its stdout.
fn sh(env: &TestEnv, script: &str) -> String {
    env.casco(["run", "--rm", "bb", "sh", "-c", script])
        .run()
        .success()
        .stdout
}

/// `KEY:\tVALUE` lines of /proc/1/status (or /proc/self/status) as a map.
fn status_fields(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

// --- exit codes --------------------------------------------------------------

both! {
    /// podman 4.3.1: `run IMG true` 0, `sh -c 'exit 3'` 3, `sh -c 'exit 255'` 255.
    fn exit_code_is_the_commands(env) {
        env.import_busybox("bb");
        env.casco(["run", "--rm", "bb", "true"]).run().code(0).stdout_is("");
        env.casco(["run", "--rm", "bb", "sh", "-c", "exit 3"]).run().code(3);
        env.casco(["run", "--rm", "bb", "sh", "-c", "exit 255"]).run().code(255);
    }
}

both! {
    /// podman 4.3.1: `/nonexistent` and `nosuchcmd` (not in PATH) exit 127.
    fn command_not_found_is_127(env) {
        env.import_busybox("bb");
        env.casco(["run", "--rm", "bb", "/nonexistent"]).run().code(127).says_why();
        env.casco(["run", "--rm", "bb", "nosuchcmd"]).run().code(127).says_why();
        assert_no_leftovers(&env);
    }
}

both! {
    /// podman 4.3.1: a file without execute permission (/etc/passwd) and a
    /// directory (/tmp) exit 126.
    fn command_not_executable_is_126(env) {
        env.import_busybox("bb");
        env.casco(["run", "--rm", "bb", "/etc/passwd"]).run().code(126).says_why();
        env.casco(["run", "--rm", "bb", "/tmp"]).run().code(126).says_why();
        assert_no_leftovers(&env);
    }
}

both! {
    /// podman 4.3.1: an unknown flag exits 125 ("unknown flag: --bogus").
    fn bad_flag_is_125(env) {
        env.casco(["run", "--bogus", "bb", "true"]).run().code(125).says_why();
    }
}

both! {
    /// podman 4.3.1: an image that does not exist exits 125 ("image not known").
    /// An ID is used so nothing tries a registry.
    fn unknown_image_is_125(env) {
        env.import_busybox("bb");
        env.casco(["run", "--rm", NO_SUCH_IMAGE, "true"]).run().code(125).says_why().stdout_is("");
        env.casco(["ps", "-aq"]).run().success().stdout_is("");
    }
}

both! {
    /// podman 4.3.1: an image with no CMD or ENTRYPOINT and no command given
    /// exits 125 ("no command or entrypoint provided").
    fn no_command_is_125(env) {
        env.import_busybox("bb");
        env.casco(["run", "--rm", "bb"]).run().code(125).says_why();
        assert_no_leftovers(&env);
    }
}

both! {
    /// podman 4.3.1: `sh -c 'kill -9 $$'` exits 0: sh is PID 1 of its own PID
    /// namespace, and the kernel drops signals a namespace's init sends itself
    /// without a handler.
    fn signals_to_pid1_from_inside_are_ignored(env) {
        env.import_busybox("bb");
        env.casco(["run", "--rm", "bb", "sh", "-c", "kill -9 $$; echo still here"])
            .run()
            .success()
            .stdout_is("still here\n");
    }
}

both! {
    /// podman 4.3.1: `podman kill k` (SIGKILL) while `run --name k IMG sleep 100`
    /// runs in the foreground: `kill` prints `k`, the foreground `run` exits 137,
    /// and inspect says ExitCode 137, Status "exited".
    fn death_by_signal_is_128_plus_n(env) {
        env.import_busybox("bb");
        let mut fg = env.casco(["run", "--name", "k", "bb", "sleep", "100"]).spawn();
        env.wait_for_status("k", "running");
        env.casco(["kill", "k"]).run().success().stdout_is("k\n");
        assert_eq!(fg.wait().status, 137);
        let c = env.inspect_container("k");
        assert_eq!(c["State"]["ExitCode"], json!(137));
        assert_eq!(c["State"]["Status"], json!("exited"));
    }
}

// --- output and environment --------------------------------------------------

both! {
    /// podman 4.3.1: the container's stdout and stderr stay apart.
    fn stdout_and_stderr_are_separate(env) {
        env.import_busybox("bb");
        let out = env
            .casco(["run", "--rm", "bb", "sh", "-c", "echo out; echo err >&2; echo out2"])
            .run()
            .success();
        assert_eq!(out.stdout, "out\nout2\n");
        assert!(out.stderr.contains("err\n"), "{}", out.report("expected err on stderr"));
        assert!(!out.stderr.contains("out"), "{}", out.report("stdout leaked into stderr"));
    }
}

both! {
    /// podman 4.3.1 `run IMG env` prints exactly PATH=/usr/local/sbin:
    /// /usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin, TERM=xterm, container=podman,
    /// HOME=/root, HOSTNAME=<first 12 of the ID>. casco names itself in
    /// `container=`.
    fn default_environment(env) {
        env.import_busybox("bb");
        let out = env.casco(["run", "--name", "e", "bb", "env"]).run().success();
        let vars: BTreeMap<&str, &str> = out.lines().iter().filter_map(|l| l.split_once('=')).collect();
        let keys: Vec<&str> = vars.keys().copied().collect();
        assert_eq!(keys, ["HOME", "HOSTNAME", "PATH", "TERM", "container"], "{}", out.stdout);
        assert_eq!(vars["PATH"], "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        assert_eq!(vars["TERM"], "xterm");
        assert_eq!(vars["HOME"], "/root");
        assert!(!vars["container"].is_empty());
        let id = env.inspect_container("e")["Id"].as_str().unwrap().to_string();
        assert_eq!(vars["HOSTNAME"], &id[..12]);
    }
}

both! {
    /// podman 4.3.1: `-e FOO=bar -e HOME=/x` sets and overrides; `-e NAME`
    /// copies NAME from the caller's environment.
    fn env_flags(env) {
        env.import_busybox("bb");
        env.casco(["run", "--rm", "-e", "FOO=bar", "-e", "HOME=/x", "bb", "sh", "-c", "echo $FOO $HOME"])
            .run()
            .success()
            .stdout_is("bar /x\n");
        env.casco(["run", "--rm", "-e", "FROMHOST", "bb", "sh", "-c", "echo $FROMHOST"])
            .env("FROMHOST", "hv")
            .run()
            .success()
            .stdout_is("hv\n");
    }
}

// --- user, groups, working directory -----------------------------------------

both! {
    /// podman 4.3.1: by default `id` prints `uid=0(root) gid=0(root)` (no
    /// supplementary groups) and HOME is /root.
    fn user_defaults_to_root(env) {
        env.import_busybox("bb");
        env.casco(["run", "--rm", "bb", "id"]).run().success().stdout_is("uid=0(root) gid=0(root)\n");
    }
}

both! {
    /// podman 4.3.1: `-u tester` and `-u 1000` give
    /// `uid=1000(tester) gid=1000(tester) groups=10(wheel),1000(tester)` and
    /// HOME=/home/tester (from the image's /etc/passwd and /etc/group).
    fn user_from_passwd(env) {
        env.import_busybox("bb");
        for user in ["tester", "1000"] {
            env.casco(["run", "--rm", "-u", user, "bb", "sh", "-c", "id; echo $HOME"])
                .run()
                .success()
                .stdout_is("uid=1000(tester) gid=1000(tester) groups=10(wheel),1000(tester)\n/home/tester\n");
        }
    }
}

both! {
    /// podman 4.3.1: `-u 1234:5678` (in no file) gives uid 1234, gid 5678,
    /// groups 5678, HOME=/. (podman also adds a passwd line for 1234; not checked.)
    fn user_numeric_not_in_passwd(env) {
        env.import_busybox("bb");
        env.casco(["run", "--rm", "-u", "1234:5678", "bb", "sh", "-c", "id -u; id -g; id -G; echo $HOME"])
            .run()
            .success()
            .stdout_is("1234\n5678\n5678\n/\n");
    }
}

both! {
    /// podman 4.3.1: `-u tester:wheel` gives `uid=1000(tester) gid=10(wheel)
    /// groups=10(wheel)`: an explicit group replaces the user's groups.
    fn user_with_group(env) {
        env.import_busybox("bb");
        env.casco(["run", "--rm", "-u", "tester:wheel", "bb", "id"])
            .run()
            .success()
            .stdout_is("uid=1000(tester) gid=10(wheel) groups=10(wheel)\n");
    }
}

both! {
    /// podman 4.3.1: `-u nosuchuser` exits 126 ("unable to find user").
    fn unknown_user_is_126(env) {
        env.import_busybox("bb");
        env.casco(["run", "--rm", "-u", "nosuchuser", "bb", "id"]).run().code(126).says_why();
        assert_no_leftovers(&env);
    }
}

both! {
    /// podman 4.3.1: `--group-add wheel` makes `id -G` print `0 10`.
    fn group_add(env) {
        env.import_busybox("bb");
        env.casco(["run", "--rm", "--group-add", "wheel", "bb", "id", "-G"])
            .run()
            .success()
            .stdout_is("0 10\n");
    }
}

both! {
    /// The working directory is / by default and `-w /tmp` sets it. A missing
    /// `-w /new/dir` is created, as Docker and newer podman do (podman 4.3.1
    /// with runc exits 126 instead): deliberate.
    fn workdir(env) {
        env.import_busybox("bb");
        env.casco(["run", "--rm", "bb", "pwd"]).run().success().stdout_is("/\n");
        env.casco(["run", "--rm", "-w", "/tmp", "bb", "pwd"]).run().success().stdout_is("/tmp\n");
        env.casco(["run", "--rm", "-w", "/new/dir", "bb", "pwd"]).run().success().stdout_is("/new/dir\n");
        assert_no_leftovers(&env);
    }
}

// --- hostname ----------------------------------------------------------------

both! {
    /// podman 4.3.1: the hostname, $HOSTNAME and /etc/hostname are the first
    /// 12 hex digits of the container ID.
    fn hostname_is_the_short_id(env) {
        env.import_busybox("bb");
        let out = env
            .casco(["run", "--name", "h", "bb", "sh", "-c", "hostname; echo $HOSTNAME; head -n1 /etc/hostname"])
            .run()
            .success();
        let id = env.inspect_container("h")["Id"].as_str().unwrap().to_string();
        assert!(is_hex(&id, 64), "Id {id}");
        let short = &id[..12];
        assert_eq!(out.lines(), [short, short, short], "{}", out.stdout);
        assert_eq!(env.inspect_container("h")["Config"]["Hostname"], json!(short));
    }
}

both! {
    /// podman 4.3.1: `-h myhost` sets the hostname and /etc/hostname.
    fn hostname_flag(env) {
        env.import_busybox("bb");
        let out = env
            .casco(["run", "--rm", "-h", "myhost", "bb", "sh", "-c", "hostname; head -n1 /etc/hostname"])
            .run()
            .success();
        assert_eq!(out.lines(), ["myhost", "myhost"]);
    }
}

// --- isolation -----------------------------------------------------------------

both! {
    /// podman 4.3.1: the command is PID 1 and sees no host process:
    /// `ps` lists only itself (`PID USER COMMAND` / `1 root ps`).
    fn pid_namespace(env) {
        env.import_busybox("bb");
        env.casco(["run", "--rm", "bb", "sh", "-c", "echo $$"]).run().success().stdout_is("1\n");
        let out = env.casco(["run", "--rm", "bb", "ps", "-o", "pid,comm"]).run().success();
        let rows: Vec<Vec<&str>> = out.lines().iter().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(rows, [vec!["PID", "COMMAND"], vec!["1", "ps"]], "{}", out.stdout);
    }
}

both! {
    /// podman's default set as the issue lists it (CHOWN DAC_OVERRIDE FOWNER
    /// FSETID KILL NET_BIND_SERVICE SETFCAP SETGID SETPCAP SETUID SYS_CHROOT):
    /// 00000000800405fb. Deliberately smaller than podman 4.3.1's Debian default
    /// (a80425fb), which also grants NET_RAW, MKNOD and AUDIT_WRITE. CapInh and
    /// CapAmb 0, rootless too. As `-u tester`: CapPrm/CapEff 0, CapBnd the same.
    fn default_capabilities(env) {
        env.import_busybox("bb");
        let f = status_fields(&sh(&env, "cat /proc/1/status"));
        assert_eq!(f["CapInh"], "0000000000000000");
        assert_eq!(f["CapPrm"], DEFAULT_CAPS);
        assert_eq!(f["CapEff"], DEFAULT_CAPS);
        assert_eq!(f["CapBnd"], DEFAULT_CAPS);
        assert_eq!(f["CapAmb"], "0000000000000000");
        let out = env.casco(["run", "--rm", "-u", "tester", "bb", "cat", "/proc/self/status"]).run().success();
        let f = status_fields(&out.stdout);
        assert_eq!(f["CapPrm"], "0000000000000000");
        assert_eq!(f["CapEff"], "0000000000000000");
        assert_eq!(f["CapBnd"], DEFAULT_CAPS);
    }
}

both! {
    /// casco sets no_new_privs on every container process (secure by
    /// default), where podman 4.3.1 leaves it off (containers.conf
    /// no_new_privileges=false): `NoNewPrivs: 1`, rootful and rootless, for the
    /// first process and for `exec`.
    fn no_new_privs_is_set(env) {
        env.import_busybox("bb");
        let f = status_fields(&sh(&env, "cat /proc/1/status"));
        assert_eq!(f["NoNewPrivs"], "1");
        env.casco(["run", "-d", "--name", "nnp", "bb", "sleep", "100"]).run().success();
        let out = env.casco(["exec", "nnp", "cat", "/proc/self/status"]).run().success();
        assert_eq!(status_fields(&out.stdout)["NoNewPrivs"], "1");
        env.casco(["rm", "-f", "nnp"]).run().success();
    }
}

both! {
    /// podman 4.3.1 masks /proc/keys, /proc/timer_list (and /proc/kcore,
    /// /proc/sched_debug where they exist) with /dev/null: they read as 0 bytes;
    /// /proc/acpi and /sys/firmware are empty read-only tmpfs.
    fn masked_paths_are_empty(env) {
        env.import_busybox("bb");
        let script = "for f in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug; do \
                          [ -e $f ] && echo \"$f $(cat $f 2>/dev/null | wc -c)\"; \
                      done; \
                      for d in /proc/acpi /sys/firmware /proc/scsi; do \
                          [ -d $d ] && echo \"$d $(ls -A $d | wc -l)\"; \
                      done; true";
        let out = sh(&env, script);
        for line in out.lines() {
            assert!(line.ends_with(" 0"), "{line}: not masked (want 0 bytes / entries)\n{out}");
        }
        for must in ["/proc/keys ", "/proc/timer_list ", "/sys/firmware "] {
            assert!(out.lines().any(|l| l.starts_with(must)), "{must}missing from\n{out}");
        }
    }
}

both! {
    /// podman 4.3.1: /proc/sys, /proc/bus, /proc/fs, /proc/irq are read-only
    /// proc mounts and /sys is a read-only sysfs; writing
    /// /proc/sys/kernel/domainname fails ("Read-only file system").
    fn read_only_paths(env) {
        env.import_busybox("bb");
        env.casco(["run", "--rm", "bb", "sh", "-c", "echo x > /proc/sys/kernel/domainname"])
            .run()
            .failure();
        let script = "for p in /proc/sys /proc/bus /proc/fs /proc/irq /sys; do \
                          echo \"$p $(grep \" $p \" /proc/mounts | tail -n1 | cut -d' ' -f4 | cut -d, -f1)\"; \
                      done";
        let out = sh(&env, script);
        for p in ["/proc/sys", "/proc/bus", "/proc/fs", "/proc/irq", "/sys"] {
            assert!(out.lines().any(|l| l == format!("{p} ro")), "{p} is not mounted read-only:\n{out}");
        }
    }
}

both! {
    /// podman 4.3.1 `ls /dev`: fd full mqueue null ptmx pts random shm stderr
    /// stdin stdout tty urandom zero, with the usual device numbers, and no host
    /// device.
    fn dev_has_only_the_standard_devices(env) {
        env.import_busybox("bb");
        let names = sh(&env, "ls -A /dev");
        let names: Vec<&str> = names.lines().collect();
        let required = [
            "fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom", "zero",
        ];
        let allowed = ["mqueue", "console", "core"];
        for r in required {
            assert!(names.contains(&r), "/dev/{r} missing: {names:?}");
        }
        for n in &names {
            assert!(required.contains(n) || allowed.contains(n), "/dev/{n} should not be there: {names:?}");
        }
        let out = sh(&env, "for d in null zero full random urandom tty; do stat -c '%n %t,%T' /dev/$d; done");
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            [
                "/dev/null 1,3",
                "/dev/zero 1,5",
                "/dev/full 1,7",
                "/dev/random 1,8",
                "/dev/urandom 1,9",
                "/dev/tty 5,0"
            ]
        );
    }
}

both! {
    /// podman 4.3.1: `--network none` leaves only `lo`.
    fn network_none_has_only_loopback(env) {
        env.import_busybox("bb");
        let out = env.casco(["run", "--rm", "--network", "none", "bb", "ip", "-o", "link"]).run().success();
        let lines = out.lines();
        assert_eq!(lines.len(), 1, "{}", out.stdout);
        assert!(lines[0].starts_with("1: lo:"), "{}", out.stdout);
        // podman brings the loopback up, with its address.
        assert!(lines[0].contains("UP"), "{}", out.stdout);
        let out = env.casco(["run", "--rm", "--network", "none", "bb", "ip", "-o", "-4", "addr"]).run().success();
        assert!(out.stdout.contains("127.0.0.1"), "{}", out.stdout);
    }
}

// --- standard input and terminals --------------------------------------------

both! {
    /// podman 4.3.1: with `-i`, piped input reaches the command (`cat` echoes
    /// "a\nb\n", `wc -c` of "hello" is 5); without `-i`, stdin is empty.
    fn stdin_is_passed_with_i(env) {
        env.import_busybox("bb");
        env.casco(["run", "--rm", "-i", "bb", "cat"]).stdin("a\nb\n").run().success().stdout_is("a\nb\n");
        env.casco(["run", "--rm", "-i", "bb", "wc", "-c"]).stdin("hello").run().success().stdout_is("5\n");
        env.casco(["run", "--rm", "bb", "cat"]).stdin("a\nb\n").run().success().stdout_is("");
    }
}

both! {
    /// podman 4.3.1: without `-t`, `tty` prints "not a tty" and exits 1; with
    /// `-t` (even when casco's own stdout is a pipe) it prints "/dev/pts/0\r\n".
    fn tty_flag(env) {
        env.import_busybox("bb");
        env.casco(["run", "--rm", "bb", "tty"]).run().code(1).stdout_is("not a tty\n");
        env.casco(["run", "--rm", "-t", "bb", "tty"]).run().success().stdout_is("/dev/pts/0\r\n");
    }
}

both! {
    /// podman 4.3.1 `run --rm -it bb sh` on a 30x100 terminal: `tty` prints
    /// /dev/pts/0, `stty size` "30 100"; after a resize to 40x132 `stty size`
    /// says "40 132"; `exit 7` ends `run` with 7.
    fn interactive_terminal(env) {
        env.import_busybox("bb");
        let mut pty = env.casco(["run", "--rm", "-it", "bb", "sh"]).pty(30, 100);
        // The terminal echoes input: wait for text only the output contains.
        pty.write(b"tty; stty size; echo mark-$((40 + 2))\n");
        let out = pty.read_until("mark-42", Duration::from_secs(30));
        assert!(out.contains("/dev/pts/0\r\n"), "{out:?}");
        assert!(out.contains("30 100\r\n"), "{out:?}");
        pty.set_size(40, 132);
        // Give SIGWINCH time to travel; stty reads the size when it runs.
        std::thread::sleep(Duration::from_millis(300));
        pty.write(b"stty size; echo mark-$((40 + 3))\n");
        let out = pty.read_until("mark-43", Duration::from_secs(30));
        assert!(out.contains("40 132\r\n"), "{out:?}");
        pty.write(b"exit 7\n");
        assert_eq!(pty.wait(), 7, "{}", pty.transcript());
        assert_no_leftovers(&env);
    }
}

// --- lifetime of the container ------------------------------------------------

both! {
    /// podman 4.3.1: `run --rm` leaves no container behind, whether the command
    /// succeeds or fails.
    fn rm_leaves_nothing(env) {
        env.import_busybox("bb");
        env.casco(["run", "--rm", "bb", "true"]).run().success();
        env.casco(["run", "--rm", "bb", "sh", "-c", "exit 3"]).run().code(3);
        assert_no_leftovers(&env);
    }
}

both! {
    /// podman 4.3.1: without `--rm` the container stays: `Exited (0) 1 second ago`.
    fn container_stays_without_rm(env) {
        env.import_busybox("bb");
        env.casco(["run", "--name", "keep", "bb", "true"]).run().success();
        let c = env.inspect_container("keep");
        assert_eq!(c["State"]["Status"], json!("exited"));
        assert_eq!(c["State"]["ExitCode"], json!(0));
        let v = env.casco(["ps", "-a", "--format", "json"]).run().success().json();
        assert_eq!(v[0]["Names"], json!(["keep"]));
        assert!(v[0]["Status"].as_str().unwrap_or("").starts_with("Exited (0)"), "{}", v[0]);
    }
}

both! {
    /// podman 4.3.1: `run -d` prints the 64-hex ID and a newline.
    fn detach_prints_the_id(env) {
        env.import_busybox("bb");
        let out = env.casco(["run", "-d", "bb", "true"]).run().success();
        assert!(out.stdout.ends_with('\n') && is_hex(out.stdout_trim(), 64), "{}", out.report("expected 64 hex"));
        env.casco(["wait", out.stdout_trim()]).run().success().stdout_is("0\n");
    }
}

both! {
    /// podman 4.3.1: a name in use makes `create` and `run` exit 125.
    fn duplicate_name_is_125(env) {
        env.import_busybox("bb");
        env.casco(["create", "--name", "dup", "bb", "true"]).run().success();
        env.casco(["create", "--name", "dup", "bb", "true"]).run().code(125).says_why();
        env.casco(["run", "--rm", "--name", "dup", "bb", "true"]).run().code(125).says_why();
        assert_eq!(env.casco(["ps", "-aq"]).run().success().lines().len(), 1);
    }
}

// --- entrypoint, read-only, mounts ---------------------------------------------

both! {
    /// podman 4.3.1: `--entrypoint "" bb echo x` prints x; `--entrypoint
    /// /bin/echo bb a b` prints "a b".
    fn entrypoint_flag(env) {
        env.import_busybox("bb");
        env.casco(["run", "--rm", "--entrypoint", "", "bb", "echo", "x"]).run().success().stdout_is("x\n");
        env.casco(["run", "--rm", "--entrypoint", "/bin/echo", "bb", "a", "b"])
            .run()
            .success()
            .stdout_is("a b\n");
    }
}

both! {
    /// podman 4.3.1: with `--read-only`, `touch /x` fails (exit 1, "Read-only
    /// file system") but /tmp is a writable tmpfs.
    fn read_only_root(env) {
        env.import_busybox("bb");
        let out = env.casco(["run", "--rm", "--read-only", "bb", "touch", "/x"]).run().code(1);
        assert!(out.stderr.contains("Read-only file system"), "{}", out.report("expected EROFS"));
        env.casco(["run", "--rm", "--read-only", "bb", "touch", "/tmp/x"]).run().success();
    }
}

both! {
    /// podman 4.3.1: `-v HOST:/data` shows the host's files and writes go
    /// through; `:ro` makes `touch` fail with 1; a missing source exits 125.
    fn bind_volumes(env) {
        env.import_busybox("bb");
        let vol = env.mkdir("vol");
        env.write_file("vol/f", "hostdata\n");
        let spec = format!("{}:/data", vol.display());
        env.casco(["run", "--rm", "-v", &spec, "bb", "sh", "-c", "cat /data/f; echo new > /data/g"])
            .run()
            .success()
            .stdout_is("hostdata\n");
        assert_eq!(std::fs::read_to_string(vol.join("g")).unwrap(), "new\n");
        let ro = format!("{}:/data:ro", vol.display());
        env.casco(["run", "--rm", "-v", &ro, "bb", "touch", "/data/h"]).run().code(1);
        assert!(!vol.join("h").exists());
        let missing = format!("{}:/data", env.path("nonexistent").display());
        env.casco(["run", "--rm", "-v", &missing, "bb", "true"]).run().code(125).says_why();
        assert_no_leftovers(&env);
    }
}

both! {
    /// podman 4.3.1: `--tmpfs /scratch` mounts a tmpfs there.
    fn tmpfs_flag(env) {
        env.import_busybox("bb");
        let out = env
            .casco(["run", "--rm", "--tmpfs", "/scratch", "bb", "sh", "-c", "grep ' /scratch ' /proc/mounts"])
            .run()
            .success();
        assert!(out.stdout.starts_with("tmpfs /scratch tmpfs "), "{}", out.stdout);
    }
}

// --- cidfile and pidfile --------------------------------------------------------

both! {
    /// podman 4.3.1: `--cidfile F` writes the 64-hex ID with no newline; an
    /// existing F makes `run` exit 125.
    fn cidfile(env) {
        env.import_busybox("bb");
        env.mkdir("out");
        let cid = env.path("out/cid");
        env.casco(["run", "--cidfile", cid.to_str().unwrap(), "--name", "c", "bb", "true"]).run().success();
        let written = std::fs::read_to_string(&cid).unwrap();
        assert_eq!(json!(written), env.inspect_container("c")["Id"]);
        env.casco(["run", "--rm", "--cidfile", cid.to_str().unwrap(), "bb", "true"]).run().code(125).says_why();
    }
}

both! {
    /// podman 4.3.1: `run -d --pidfile F` writes the host PID of the
    /// container's first process (no newline), which is State.Pid.
    fn pidfile(env) {
        env.import_busybox("bb");
        env.mkdir("out");
        let pidfile = env.path("out/pid");
        env.casco(["run", "-d", "--pidfile", pidfile.to_str().unwrap(), "--name", "p", "bb", "sleep", "1000"])
            .run()
            .success();
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        assert!(pid.bytes().all(|b| b.is_ascii_digit()) && !pid.is_empty(), "pidfile {pid:?}");
        assert_eq!(env.inspect_container("p")["State"]["Pid"], json!(pid.parse::<u64>().unwrap()));
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        assert_eq!(cmdline, b"sleep\x001000\x00");
        env.casco(["rm", "-f", "-t", "0", "p"]).run().success();
        assert_no_leftovers(&env);
    }
}

// --- user namespace ---------------------------------------------------------------

both! {
    /// podman 4.3.1 `cat /proc/self/uid_map /proc/self/gid_map`: rootful,
    /// `0 0 4294967295` (no user namespace); rootless as UID 1001 with
    /// subordinate range 100000:65536, `0 1001 1` then `1 100000 65536`. A file
    /// the container's root makes in a bind mount belongs to the caller on the
    /// host; `chown 1000` in the container gives host UID 100000+999 rootless.
    fn user_namespace_mapping(env) {
        env.import_busybox("bb");
        let out = env
            .casco(["run", "--rm", "bb", "cat", "/proc/self/uid_map", "/proc/self/gid_map"])
            .run()
            .success();
        let maps: Vec<Vec<&str>> = out.lines().iter().map(|l| l.split_whitespace().collect()).collect();
        let vol = env.mkdir("vol");
        let spec = format!("{}:/d", vol.display());
        env.casco(["run", "--rm", "-v", &spec, "bb", "sh", "-c", "touch /d/mine; touch /d/theirs; chown 1000:1000 /d/theirs"])
            .run()
            .success();
        let owner = |f: &str| {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(vol.join(f)).unwrap();
            (m.uid(), m.gid())
        };
        assert_eq!(owner("mine"), (env.uid(), env.gid()));
        match env.user() {
            None => {
                assert_eq!(maps, [vec!["0", "0", "4294967295"], vec!["0", "0", "4294967295"]], "{}", out.stdout);
                assert_eq!(owner("theirs"), (1000, 1000));
            }
            Some(user) => {
                let (uid_start, _) = subid_range("/etc/subuid", user).expect("subuid range");
                let (gid_start, _) = subid_range("/etc/subgid", user).expect("subgid range");
                let (uid, gid) = (user.uid.to_string(), user.gid.to_string());
                let (us, gs) = (uid_start.to_string(), gid_start.to_string());
                assert_eq!(
                    maps,
                    [
                        vec!["0", uid.as_str(), "1"],
                        vec!["1", us.as_str(), "65536"],
                        vec!["0", gid.as_str(), "1"],
                        vec!["1", gs.as_str(), "65536"]
                    ],
                    "{}",
                    out.stdout
                );
                assert_eq!(owner("theirs"), (uid_start + 999, gid_start + 999));
            }
        }
        assert!(env.is_rootless() == env.user().is_some());
    }
}
