//! The store-wide verbs: `system df`, `system prune`, `system reset`, `info`
//! and `version`.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::json;

use crate::common::*;

/// `system df` rows as TYPE -> (TOTAL, ACTIVE).
fn df_counts(env: &TestEnv) -> BTreeMap<String, (String, String)> {
    let out = env.casco(["system", "df"]).run().success();
    let t = out.table();
    assert_eq!(
        t.columns,
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        "{}",
        out.stdout
    );
    t.rows
        .iter()
        .map(|r| (r["TYPE"].clone(), (r["TOTAL"].clone(), r["ACTIVE"].clone())))
        .collect()
}

fn counts(images: (u32, u32), containers: (u32, u32)) -> BTreeMap<String, (String, String)> {
    let pair = |(t, a): (u32, u32)| (t.to_string(), a.to_string());
    BTreeMap::from([
        ("Images".to_string(), pair(images)),
        ("Containers".to_string(), pair(containers)),
        ("Local Volumes".to_string(), pair((0, 0))),
    ])
}

/// Imports the busybox tarball under `name` (None: unnamed) with a label that
/// makes its ID its own; returns the bare 64-hex ID.
fn import_distinct(env: &TestEnv, name: Option<&str>, label: &str) -> String {
    let mut args = vec![
        "import".to_string(),
        "--change".to_string(),
        format!("LABEL which={label}"),
        busybox_tar().display().to_string(),
    ];
    args.extend(name.map(String::from));
    let out = env.casco(&args).run().success();
    out.stdout_trim().trim_start_matches("sha256:").to_string()
}

both! {
    /// podman 4.3.1 `system df`:
    /// `TYPE           TOTAL       ACTIVE      SIZE        RECLAIMABLE`
    /// `Images         1           1           2.131MB     0B (0%)`
    /// `Containers     2           1           ...`
    /// `Local Volumes  0           0           0B          0B (0%)`
    /// TOTAL counts everything, ACTIVE the images some container uses and the
    /// running containers.
    fn system_df_counts(env) {
        assert_eq!(df_counts(&env), counts((0, 0), (0, 0)));
        env.import_busybox("bb");
        import_distinct(&env, None, "unused");
        env.casco(["run", "-d", "--name", "up", "bb", "sleep", "1000"]).run().success();
        env.casco(["run", "--name", "done", "bb", "true"]).run().success();
        assert_eq!(df_counts(&env), counts((2, 1), (2, 1)));
        let v = env.casco(["system", "df", "--format", "json"]).run().success().json();
        let arr = v.as_array().unwrap_or_else(|| panic!("system df --format json: {v}"));
        let by_type: BTreeMap<&str, &serde_json::Value> =
            arr.iter().map(|r| (r["Type"].as_str().unwrap_or_default(), r)).collect();
        assert_eq!(by_type["Images"]["Total"], json!(2));
        assert_eq!(by_type["Images"]["Active"], json!(1));
        assert_eq!(by_type["Containers"]["Total"], json!(2));
        assert_eq!(by_type["Containers"]["Active"], json!(1));
    }
}

both! {
    /// podman 4.3.1 `system prune -f`: removes exited and created containers
    /// and dangling (unnamed, unused) images, and prints their IDs; keeps
    /// running containers, named images, and the image a running container
    /// uses.
    fn system_prune(env) {
        env.import_busybox("bb");
        let named = import_distinct(&env, Some("named"), "named");
        let dangling = import_distinct(&env, None, "dangling");
        let id_of = |args: &[&str]| env.casco(args).run().success().stdout_trim().to_string();
        let up = id_of(&["run", "-d", "--name", "up", "bb", "sleep", "1000"]);
        let done = id_of(&["run", "-d", "--name", "done", "named", "true"]);
        env.casco(["wait", "done"]).run().success();
        let made = id_of(&["create", "--name", "made", "bb", "true"]);
        let out = env.casco(["system", "prune", "-f"]).run().success();
        for gone in [&done, &made, &dangling] {
            assert!(out.stdout.contains(gone.as_str()), "{}", out.report(&format!("{gone} not in the prune output")));
        }
        assert!(!out.stdout.contains(&up), "{}", out.report("the running container was pruned"));
        let left = env.casco(["ps", "-aq", "--no-trunc"]).run().success();
        assert_eq!(left.lines(), [up.as_str()]);
        assert_eq!(env.container_status("up"), "running");
        let mut images: Vec<String> = env
            .casco(["images", "--format", "{{.Repository}}"])
            .run()
            .success()
            .lines()
            .iter()
            .map(|s| s.to_string())
            .collect();
        images.sort();
        assert_eq!(images, ["localhost/bb", "localhost/named"]);
        env.casco(["image", "inspect", &dangling]).run().code(125);
        env.casco(["image", "inspect", &named]).run().success();
    }
}

/// Everything under `dir` (relative paths), or None when `dir` is absent.
fn contents(dir: &Path) -> Option<Vec<String>> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            out.push(e.path().strip_prefix(base).unwrap_or(&e.path()).display().to_string());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(base, &e.path(), out);
            }
        }
    }
    if !dir.exists() {
        return None;
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    Some(out)
}

both! {
    /// podman 4.3.1 `system reset -f` prints nothing and removes every
    /// container (running ones too) and image: the store root and the run
    /// root end up empty or absent, rootless too, where the store holds files
    /// owned by subordinate IDs (a file chowned to 1000 in a 0700 directory),
    /// and no mount or process is left. casco works normally afterwards.
    fn system_reset_empties_the_store(env) {
        env.import_busybox("bb");
        let script = "mkdir -p /data/sub; echo x > /data/sub/f; chown -R 1000:1000 /data; chmod 700 /data/sub";
        env.casco(["run", "--name", "owned", "bb", "sh", "-c", script])
            .run()
            .success();
        env.casco(["run", "-d", "--name", "up", "bb", "sleep", "1000"]).run().success();
        env.casco(["run", "-d", "--name", "upi", "--init", "bb", "sleep", "1000"]).run().success();
        env.casco(["create", "--name", "made", "bb", "true"]).run().success();
        env.casco(["system", "reset", "-f"]).run().success().stdout_is("");
        for dir in [env.store_root(), env.run_root()] {
            let left = contents(&dir);
            assert!(left.as_ref().is_none_or(Vec::is_empty), "{} after system reset: {left:?}", dir.display());
        }
        assert_no_leftovers(&env);
        env.casco(["images", "-q"]).run().success().stdout_is("");
        env.import_busybox("bb");
        env.casco(["run", "--rm", "bb", "true"]).run().success();
    }
}

both! {
    /// podman 4.3.1 `info --format json`: `host.security.rootless` (bool),
    /// `host.cgroupVersion` ("v1" or "v2", as the host has), and
    /// `store.graphDriverName`, `store.graphRoot` (the --root given),
    /// `store.runRoot`. casco adds `host.rootless`. Go templates use the Go
    /// field names, not the JSON keys: `{{.Host.Security.Rootless}}`,
    /// `{{.Store.GraphRoot}}`, `{{.Store.GraphDriverName}}`.
    fn info_reports_host_and_store(env) {
        let out = env.casco(["info", "--format", "json"]).run().success();
        let v = out.json();
        let rootless = json!(env.is_rootless());
        assert_eq!(v["host"]["security"]["rootless"], rootless, "{}", out.stdout);
        assert_eq!(v["host"]["rootless"], rootless, "{}", out.stdout);
        let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        assert_eq!(v["host"]["cgroupVersion"], json!(if v2 { "v2" } else { "v1" }), "{}", out.stdout);
        let driver = v["store"]["graphDriverName"].as_str().unwrap_or_default().to_string();
        assert!(driver == "overlay" || driver == "vfs", "{}", out.report("graphDriverName"));
        assert_eq!(v["store"]["graphRoot"], json!(env.store_root().display().to_string()), "{}", out.stdout);
        assert_eq!(v["store"]["runRoot"], json!(env.run_root().display().to_string()), "{}", out.stdout);
        let out = env
            .casco(["info", "--format", "{{.Host.Security.Rootless}} {{.Store.GraphDriverName}} {{.Store.GraphRoot}}"])
            .run()
            .success();
        assert_eq!(
            out.stdout,
            format!("{} {driver} {}\n", env.is_rootless(), env.store_root().display()),
            "{}",
            out.report("info --format with podman's field names")
        );
    }
}

both! {
    /// podman 4.3.1 `version`: a `Version:      4.3.1` line (casco: its own
    /// version); `version --format '{{.Client.Version}}'` prints the same
    /// value.
    fn version_prints_the_version(env) {
        let out = env.casco(["version"]).run().success();
        let version = out
            .lines()
            .iter()
            .find_map(|l| l.strip_prefix("Version:"))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("{}", out.report("no Version: line")));
        let numeric = version.chars().next().is_some_and(|c| c.is_ascii_digit());
        assert!(numeric, "Version {version:?}");
        env.casco(["version", "--format", "{{.Client.Version}}"]).run().success().stdout_is(&format!("{version}\n"));
    }
}

both! {
    /// casco's own hygiene: the store's tmp/ holds only what a running
    /// command is using, so it is empty between commands: after the first
    /// command on a new store (which probes overlayfs there), after an
    /// import, and after a run.
    fn store_tmp_is_empty_between_commands(env) {
        let tmp = env.store_root().join("tmp");
        let check = |after: &str| {
            let left = contents(&tmp).unwrap_or_default();
            assert!(left.is_empty(), "{} after {after}: {left:?}", tmp.display());
        };
        env.casco(["images", "-q"]).run().success();
        check("the first command");
        env.import_busybox("bb");
        check("import");
        env.casco(["run", "--rm", "bb", "true"]).run().success();
        check("run --rm");
    }
}
