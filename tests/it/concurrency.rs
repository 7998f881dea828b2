//! Many casco processes at once, and a casco process killed mid-run: the store
//! must stay consistent and nothing may be left behind.

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::common::*;

/// How many containers the concurrency test starts at once.
const N: usize = 20;

both! {
    /// 20 `run -d` started at the same time from separate processes all
    /// succeed with distinct IDs; `ps -a` lists all 20; 20 parallel `rm -f`
    /// all succeed; then nothing is left: `ps -a` empty, no container directory
    /// in the store, no mount, no process. (podman 4.3.1 does this too: 200
    /// parallel `run -d` in ~33 s.)
    fn parallel_run_then_parallel_rm(env) {
        env.import_busybox("bb");
        let names: Vec<String> = (0..N).map(|i| format!("par{i}")).collect();
        let mut runs: Vec<Child> = names
            .iter()
            .map(|n| {
                env.casco(["run", "-d", "--name", n, "bb", "sleep", "1000"])
                    .timeout(Duration::from_secs(180))
                    .spawn()
            })
            .collect();
        let mut ids: Vec<String> = runs.iter_mut().map(|c| c.wait().success().stdout_trim().to_string()).collect();
        for id in &ids {
            assert!(is_hex(id, 64), "run -d printed {id:?}");
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), N, "IDs are not distinct");

        let out = env.casco(["ps", "-a", "--format", "json"]).run().success();
        let v = out.json();
        let arr = v.as_array().unwrap_or_else(|| panic!("{}", out.report("expected an array")));
        let mut listed: Vec<String> = arr.iter().map(|c| c["Names"][0].as_str().unwrap_or("").to_string()).collect();
        listed.sort();
        let mut want = names.clone();
        want.sort();
        assert_eq!(listed, want, "{}", out.stdout);
        assert!(arr.iter().all(|c| c["State"] == "running"), "{}", out.stdout);

        let mut rms: Vec<Child> = names
            .iter()
            .map(|n| env.casco(["rm", "-f", "-t", "0", n]).timeout(Duration::from_secs(180)).spawn())
            .collect();
        for (rm, name) in rms.iter_mut().zip(&names) {
            rm.wait().success().stdout_is(&format!("{name}\n"));
        }
        assert_no_leftovers(&env);
    }
}

both! {
    /// A foreground `run --name k IMG sleep 100` whose casco process is
    /// SIGKILLed while the container runs: `ps -a` still works and lists k,
    /// `rm -f k` succeeds, and nothing is left. (With podman, conmon keeps the
    /// container running when the podman process dies.)
    fn killed_foreground_run_can_be_cleaned_up(env) {
        env.import_busybox("bb");
        let mut fg = env.casco(["run", "--name", "k", "bb", "sleep", "100"]).spawn();
        env.wait_for_status("k", "running");
        fg.signal(Signal::SIGKILL);
        assert_eq!(fg.wait().status, 137);
        let out = env.casco(["ps", "-a", "--format", "json"]).run().success();
        assert_eq!(out.json()[0]["Names"], serde_json::json!(["k"]), "{}", out.stdout);
        env.casco(["rm", "-f", "-t", "0", "k"]).run().success();
        assert_no_leftovers(&env);
    }
}
