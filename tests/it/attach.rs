//! `attach`, `start -a`/`start -ai`, and terminal sizes for `run -it`, `exec
//! -it` and `attach`, driven through a pseudo-terminal where a terminal is
//! needed.

use std::time::Duration;

use serde_json::json;

use crate::common::*;

/// ctrl-p ctrl-q: the default detach sequence.
const DETACH: &[u8] = b"\x10\x11";

/// How long to wait for output on a terminal.
const PTY_WAIT: Duration = Duration::from_secs(30);

/// Asks the shell on `pty` for `stty size` until it answers "ROWS COLS" (a
/// resize reaches the container asynchronously); panics after 10 s.
#[track_caller]
fn wait_for_size(pty: &mut Pty, rows: u16, cols: u16) {
    let want = format!("{rows} {cols}\r\n");
    for n in 0..100 {
        // The terminal echoes what is typed: only the output has the sum.
        pty.write(format!("stty size; echo size-mark-$((1000 + {n}))\r").as_bytes());
        let out = pty.read_until(&format!("size-mark-{}", 1000 + n), PTY_WAIT);
        if out.contains(&want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the container never saw the size {rows}x{cols}:\n{}", pty.transcript());
}

// --- attach ----------------------------------------------------------------------------

both! {
    /// podman 4.3.1: `run -d -it --name a bb sh`, then `attach a` on a
    /// terminal: typed commands run (`echo hi-$((1+1))` prints hi-2), ctrl-p
    /// ctrl-q detaches (`attach` exits 0) and the container keeps running; a
    /// second `attach` works the same, and typing `exit 5` there ends the
    /// container (ExitCode 5) and `attach`: with 5 as Docker does (moby#2926),
    /// or 0 as podman 4.3.1's `attach`, which passes on no exit code.
    fn attach_to_a_detached_shell(env) {
        env.import_busybox("bb");
        env.casco(["run", "-d", "-it", "--name", "a", "bb", "sh"]).run().success();
        let mut pty = env.casco(["attach", "a"]).pty(24, 80);
        pty.write(b"echo hi-$((1+1))\r");
        pty.read_until("hi-2", PTY_WAIT);
        pty.write(DETACH);
        assert_eq!(pty.wait(), 0, "attach after ctrl-p ctrl-q; transcript:\n{}", pty.transcript());
        assert_eq!(env.container_status("a"), "running");
        let mut pty = env.casco(["attach", "a"]).pty(24, 80);
        pty.write(b"echo again-$((2+2))\r");
        pty.read_until("again-4", PTY_WAIT);
        pty.write(b"exit 5\r");
        let code = pty.wait();
        assert!(code == 5 || code == 0, "attach after `exit 5` exited {code}; transcript:\n{}", pty.transcript());
        env.wait_for_status("a", "exited");
        assert_eq!(env.inspect_container("a")["State"]["ExitCode"], json!(5));
    }
}

both! {
    /// podman 4.3.1: `attach` to a `run -d -t` container shows its output;
    /// ctrl-p ctrl-q detaches with 0 and the container keeps running;
    /// `--detach-keys ctrl-x` makes ctrl-x the sequence.
    fn attach_shows_output_and_detaches(env) {
        env.import_busybox("bb");
        env.casco(["run", "-d", "-it", "--name", "t", "bb", "sh", "-c", "while :; do echo tick; sleep 0.2; done"])
            .run()
            .success();
        let mut pty = env.casco(["attach", "t"]).pty(24, 80);
        pty.read_until("tick", PTY_WAIT);
        pty.write(DETACH);
        assert_eq!(pty.wait(), 0, "attach after ctrl-p ctrl-q; transcript:\n{}", pty.transcript());
        assert_eq!(env.container_status("t"), "running");
        let mut pty = env.casco(["attach", "--detach-keys", "ctrl-x", "t"]).pty(24, 80);
        pty.read_until("tick", PTY_WAIT);
        pty.write(b"\x18");
        assert_eq!(pty.wait(), 0, "attach after ctrl-x; transcript:\n{}", pty.transcript());
        assert_eq!(env.container_status("t"), "running");
    }
}

both! {
    /// podman 4.3.1: `attach` gives the container's terminal the size of the
    /// attaching terminal (37x111), and passes on a resize (20x70).
    fn attach_passes_the_terminal_size(env) {
        env.import_busybox("bb");
        let script = "while :; do stty -F /dev/tty size; sleep 0.2; done";
        env.casco(["run", "-d", "-it", "--name", "s", "bb", "sh", "-c", script])
            .run()
            .success();
        let mut pty = env.casco(["attach", "s"]).pty(37, 111);
        pty.read_until("37 111\r\n", PTY_WAIT);
        pty.set_size(20, 70);
        pty.read_until("20 70\r\n", PTY_WAIT);
        pty.write(DETACH);
        assert_eq!(pty.wait(), 0, "attach after ctrl-p ctrl-q; transcript:\n{}", pty.transcript());
    }
}

both! {
    /// podman 4.3.1: `attach` to a container that is not running (created,
    /// or exited) exits 125 ("you can only attach to running containers"), as
    /// does `attach nosuch`.
    fn attach_needs_a_running_container(env) {
        env.import_busybox("bb");
        env.casco(["create", "--name", "cr", "bb", "true"]).run().success();
        env.casco(["attach", "cr"]).run().code(125).says_why();
        env.casco(["run", "--name", "done", "bb", "true"]).run().success();
        env.casco(["attach", "done"]).run().code(125).says_why();
        env.casco(["attach", "nosuch"]).run().code(125).says_why();
        assert_eq!(env.container_status("cr"), "created");
    }
}

// --- start -a / -ai --------------------------------------------------------------------

both! {
    /// podman 4.3.1: `start -a` of a created container prints its stdout and
    /// stderr (apart) and exits with its exit code (3); starting it again
    /// with -a does the same.
    fn start_attach(env) {
        env.import_busybox("bb");
        env.casco(["create", "--name", "sa", "bb", "sh", "-c", "echo out; echo err >&2; exit 3"]).run().success();
        let out = env.casco(["start", "-a", "sa"]).run().code(3);
        assert_eq!(out.stdout, "out\n", "{}", out.report("start -a stdout"));
        assert!(out.stderr.contains("err\n"), "{}", out.report("start -a stderr"));
        assert_eq!(env.inspect_container("sa")["State"]["ExitCode"], json!(3));
        let out = env.casco(["start", "-a", "sa"]).run().code(3);
        assert_eq!(out.stdout, "out\n", "{}", out.report("second start -a stdout"));
    }
}

both! {
    /// podman 4.3.1: `start -ai` of a container created with -i feeds
    /// standard input to it: `echo data | start -ai c` with `cat` prints data;
    /// a command that reads a line and exits 4 returns 4.
    fn start_attach_interactive(env) {
        env.import_busybox("bb");
        env.casco(["create", "-i", "--name", "c", "bb", "cat"]).run().success();
        env.casco(["start", "-ai", "c"]).stdin("data\nmore\n").run().success().stdout_is("data\nmore\n");
        env.casco(["create", "-i", "--name", "r", "bb", "sh", "-c", "read x; echo got $x; exit 4"]).run().success();
        env.casco(["start", "-a", "-i", "r"]).stdin("line\n").run().code(4).stdout_is("got line\n");
    }
}

// --- terminal sizes --------------------------------------------------------------------

both! {
    /// podman 4.3.1: `run -it` on a 50x160 terminal: `stty size` says "50
    /// 160"; after a resize to 33x91 it says "33 91"; `exit 6` ends `run`
    /// with 6. `exec -it` on a 45x120 terminal the same, with its own size,
    /// and a resize to 25x90.
    fn terminal_size_for_run_and_exec(env) {
        env.import_busybox("bb");
        let mut pty = env.casco(["run", "--rm", "-it", "bb", "sh"]).pty(50, 160);
        wait_for_size(&mut pty, 50, 160);
        pty.set_size(33, 91);
        wait_for_size(&mut pty, 33, 91);
        pty.write(b"exit 6\r");
        assert_eq!(pty.wait(), 6, "{}", pty.transcript());

        env.casco(["run", "-d", "--name", "e", "bb", "sleep", "1000"]).run().success();
        let mut pty = env.casco(["exec", "-it", "e", "sh"]).pty(45, 120);
        wait_for_size(&mut pty, 45, 120);
        pty.set_size(25, 90);
        wait_for_size(&mut pty, 25, 90);
        pty.write(b"exit 3\r");
        assert_eq!(pty.wait(), 3, "{}", pty.transcript());
        env.casco(["rm", "-f", "-t", "0", "e"]).run().success();
        assert_no_leftovers(&env);
    }
}
