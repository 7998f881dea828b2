//! Tests for `commit`, `diff` and `history`. Expected values are what podman
//! 4.3.1 (runc, overlay) printed for the same steps on the busybox image.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;

/// What the base container adds on top of busybox.
const BASE_SCRIPT: &str =
    "mkdir -p /data /old/sub && echo a > /data/a && echo b > /data/b && echo x > /old/x && echo y > /old/sub/y";

/// Adds, changes and deletes files; deletes a directory; replaces /data by a
/// new directory (overlay makes it opaque).
const CHANGE_SCRIPT: &str = "echo new > /new; mkdir -p /nd/deep; echo z > /nd/deep/z; echo changed >> /etc/passwd; \
     rm /etc/group; rm -rf /old; rm -rf /data; mkdir /data; echo c > /data/c";

/// podman 4.3.1's `diff` of the container that ran CHANGE_SCRIPT on the base
/// image: the opaque /data is D with its new content A; the engine's mount
/// points (/etc/hosts, /proc, ...) are left out.
const CHANGE_DIFF: &str =
    "D /data\nA /data/c\nC /etc\nD /etc/group\nC /etc/passwd\nA /nd\nA /nd/deep\nA /nd/deep/z\nA /new\nD /old\n";

/// Imports busybox as `bb`, runs BASE_SCRIPT and commits it as `base`;
/// returns base's ID.
fn make_base(env: &TestEnv) -> String {
    env.import_busybox("bb");
    env.casco(["run", "--name", "b0", "bb", "sh", "-c", BASE_SCRIPT])
        .run()
        .success();
    env.casco(["diff", "b0"])
        .run()
        .success()
        .stdout_is("A /data\nA /data/a\nA /data/b\nC /etc\nA /old\nA /old/sub\nA /old/sub/y\nA /old/x\n");
    let id = env
        .casco(["commit", "-q", "b0", "base"])
        .run()
        .success()
        .stdout_trim()
        .to_string();
    assert!(is_hex(&id, 64), "commit printed {id:?}");
    id
}

fn inspect_image(env: &TestEnv, name: &str) -> Value {
    env.casco(["image", "inspect", name]).run().success().json()[0].clone()
}

both! {
    /// The whole round trip: diff of a container, commit with --change, the
    /// new image runs with the changes (deleted files gone), its history and diff.
    fn diff_commit_and_run(env) {
        let base = make_base(&env);
        env.casco(["run", "--name", "c1", "base", "sh", "-c", CHANGE_SCRIPT]).run().success();
        env.casco(["diff", "c1"]).run().success().stdout_is(CHANGE_DIFF);
        env.casco(["container", "diff", "c1"]).run().success().stdout_is(CHANGE_DIFF);
        let json = env.casco(["diff", "--format", "json", "c1"]).run().success().json();
        assert_eq!(
            json,
            json!({
                "changed": ["/etc", "/etc/passwd"],
                "added": ["/data/c", "/nd", "/nd/deep", "/nd/deep/z", "/new"],
                "deleted": ["/data", "/etc/group", "/old"],
            })
        );

        let out = env
            .casco(["commit", "-c", "CMD [\"cat\", \"/new\"]", "-c", "ENV FOO=bar", "c1", "img"])
            .run()
            .success();
        let id = out.stdout_trim().to_string();
        assert!(is_hex(&id, 64), "{}", out.report("expected the bare image ID"));
        for line in ["Getting image source signatures", "Writing manifest to image destination"] {
            assert!(out.stderr.contains(line), "{}", out.report(line));
        }
        assert!(out.stderr.contains(&format!("Copying config sha256:{id}")), "{}", out.report("config line"));

        // The image is named like `tag` names it, and runs with the changes.
        let img = inspect_image(&env, "img");
        assert_eq!(img["Id"], json!(id));
        assert_eq!(img["RepoTags"], json!(["localhost/img:latest"]));
        assert_eq!(img["RootFS"]["Layers"].as_array().map(Vec::len), Some(3));
        env.casco(["run", "--rm", "img"]).run().success().stdout_is("new\n");
        env.casco(["run", "--rm", "img", "sh", "-c", "echo $FOO"]).run().success().stdout_is("bar\n");
        env.casco([
            "run", "--rm", "img", "sh", "-c",
            "ls /data; cat /nd/deep/z; tail -n 1 /etc/passwd; test -e /etc/group || echo nogroup; test -e /old || echo noold",
        ])
        .run()
        .success()
        .stdout_is("c\nz\nchanged\nnogroup\nnoold\n");

        // The image's top layer reads back as the container's changes.
        env.casco(["diff", "img"]).run().success().stdout_is(CHANGE_DIFF);
        env.casco(["image", "diff", "img"]).run().success().stdout_is(CHANGE_DIFF);

        // podman: every entry with its layer's size; the intermediate images
        // that exist (base, bb) show their IDs.
        let out = env.casco(["history", "img"]).run().success();
        let t = out.table();
        assert_eq!(t.columns, ["ID", "CREATED", "CREATED BY", "SIZE", "COMMENT"]);
        let col = |name: &str| t.column(name);
        assert_eq!(col("ID"), [&id[..12], &base[..12], &bb_id(&env)[..12]]);
        assert_eq!(col("CREATED BY")[0], "/bin/sh");
        // Cut at 45 characters, as podman does.
        let import = col("CREATED BY")[2];
        assert!(import.starts_with("/bin/sh -c #(nop) ADD file:") && import.ends_with("...") && import.len() == 45, "{import}");
        assert_eq!(col("COMMENT"), ["FROM localhost/base:latest", "FROM localhost/bb:latest", "imported from tarball"]);
    }
}

/// The ID of the imported busybox image.
fn bb_id(env: &TestEnv) -> String {
    inspect_image(env, "bb")["Id"].as_str().unwrap().to_string()
}

both! {
    /// podman 4.3.1: -q, --no-trunc, --format json and Go templates.
    fn history_flags(env) {
        let base = make_base(&env);
        let bb = bb_id(&env);
        env.casco(["history", "-q", "base"])
            .run()
            .success()
            .stdout_is(&format!("{}\n{}\n", &base[..12], &bb[..12]));
        env.casco(["history", "-q", "--no-trunc", "base"])
            .run()
            .success()
            .stdout_is(&format!("{base}\n{bb}\n"));
        let out = env.casco(["history", "--no-trunc", "base"]).run().success();
        assert!(out.stdout.contains(" in /"), "{}", out.report("the whole CREATED BY"));
        assert!(out.stdout.contains(&bb), "{}", out.report("the whole ID"));

        let v = env.casco(["history", "--format", "json", "base"]).run().success().json();
        let a = v.as_array().expect("array");
        assert_eq!(a.len(), 2);
        assert_eq!(a[0]["id"], json!(base));
        assert_eq!(a[0]["CreatedBy"], json!("/bin/sh"));
        assert_eq!(a[0]["comment"], json!("FROM localhost/bb:latest"));
        assert_eq!(a[0]["tags"], json!(["localhost/base:latest"]));
        assert!(a[0]["size"].as_u64().unwrap() > 0);
        assert!(a[1]["CreatedBy"].as_str().unwrap().trim_end().ends_with(" in /"));
        assert!(a[1]["Created"].as_str().unwrap().ends_with('Z'));

        let out = env
            .casco(["history", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Comment}}", "base"])
            .run()
            .success();
        let lines = out.lines();
        assert_eq!(lines.len(), 2, "{}", out.report("two entries"));
        assert_eq!(lines[0], format!("{}|/bin/sh|FROM localhost/bb:latest", &base[..12]));
        let fields: Vec<&str> = lines[1].split('|').collect();
        assert_eq!((fields[0], fields[1].len(), fields[2]), (&bb[..12], 45, "imported from tarball"));
        let out = env.casco(["history", "-H=false", "--format", "{{.Created}}", "base"]).run().success();
        for l in out.lines() {
            assert!(l.len() == 20 && l.ends_with('Z'), "{}", out.report("RFC 3339 times"));
        }
        env.casco(["image", "history", "--format", "table {{.ID}} {{.Size}}", "base"])
            .run()
            .success();
    }
}

both! {
    /// -m and -a land in the docker-format config and the history entry;
    /// podman refuses -m with the OCI format.
    fn commit_author_message_and_format(env) {
        env.import_busybox("bb");
        env.casco(["run", "--name", "c", "bb", "true"]).run().success();
        let out = env.casco(["commit", "-q", "-m", "msg", "c", "x"]).run().code(125);
        assert!(out.stderr.contains("messages are only compatible with the docker image format"), "{}", out.report("the -m refusal"));
        env.casco(["commit", "-q", "-f", "bogus", "c", "x"]).run().code(125);
        env.casco(["commit", "-q", "nosuch", "x"]).run().code(125);

        env.casco(["commit", "-q", "-f", "docker", "-m", "my msg", "-a", "Me <me@x>", "c", "x"]).run().success();
        let img = inspect_image(&env, "x");
        assert_eq!(img["Author"], json!("Me <me@x>"));
        assert_eq!(img["ManifestType"], json!("application/vnd.docker.distribution.manifest.v2+json"));
        let h = env.casco(["history", "--format", "json", "x"]).run().success().json();
        assert_eq!(h[0]["comment"], json!("FROM localhost/bb:latest"));
        // The container's settings carry over.
        env.casco(["run", "--name", "c2", "-e", "K=v", "-w", "/tmp", "--entrypoint", "/bin/sh", "bb", "-c", "pwd; echo $K"])
            .run()
            .success();
        env.casco(["commit", "-q", "c2", "y"]).run().success();
        env.casco(["run", "--rm", "y"]).run().success().stdout_is("/tmp\nv\n");
    }
}

both! {
    /// A running container is frozen while its changes are read, and thawed
    /// after: it still answers, and the image has what it wrote.
    fn commit_running_container(env) {
        env.import_busybox("bb");
        env.casco(["run", "-d", "--name", "r", "bb", "sh", "-c", "echo hi > /f; exec sleep 1000"]).run().success();
        env.wait_for_status("r", "running");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !env.casco(["diff", "r"]).run().success().stdout.contains("A /f\n") {
            assert!(Instant::now() < deadline, "the container never wrote /f");
            std::thread::sleep(Duration::from_millis(20));
        }
        env.casco(["commit", "-q", "r", "live"]).run().success();
        env.casco(["exec", "r", "cat", "/f"]).timeout(Duration::from_secs(10)).run().success().stdout_is("hi\n");
        assert_eq!(env.container_status("r"), "running");
        env.casco(["run", "--rm", "live", "cat", "/f"]).run().success().stdout_is("hi\n");
        env.casco(["commit", "-q", "--pause=false", "r", "live2"]).run().success();
    }
}

both! {
    /// The vfs driver: the changes are found by comparing the container's copy
    /// with its layers, and commit as the same layer overlay would give.
    fn vfs_diff_and_commit(env) {
        env.casco(["--storage-driver", "vfs", "info"]).run().success();
        let base = make_base(&env);
        assert!(is_hex(&base, 64));
        env.casco(["run", "--name", "c1", "base", "sh", "-c", CHANGE_SCRIPT]).run().success();
        // The copy cannot tell a replaced directory from a changed one: /data
        // is C with its old content deleted, where overlay says D /data.
        env.casco(["diff", "c1"])
            .run()
            .success()
            .stdout_is("C /data\nD /data/a\nD /data/b\nA /data/c\nC /etc\nD /etc/group\nC /etc/passwd\nA /nd\nA /nd/deep\nA /nd/deep/z\nA /new\nD /old\n");
        env.casco(["commit", "-q", "c1", "img"]).run().success();
        env.casco([
            "run", "--rm", "img", "sh", "-c",
            "ls /data; cat /new; test -e /etc/group || echo nogroup; test -e /old || echo noold",
        ])
        .run()
        .success()
        .stdout_is("c\nnew\nnogroup\nnoold\n");
    }
}

both! {
    /// --squash: one layer holding the whole filesystem.
    fn commit_squash(env) {
        make_base(&env);
        env.casco(["run", "--name", "c1", "base", "sh", "-c", CHANGE_SCRIPT]).run().success();
        env.casco(["commit", "-q", "--squash", "c1", "sq"]).run().success();
        let img = inspect_image(&env, "sq");
        assert_eq!(img["RootFS"]["Layers"].as_array().map(Vec::len), Some(1));
        env.casco(["run", "--rm", "sq", "sh", "-c", "ls /data; test -e /old || echo noold"])
            .run()
            .success()
            .stdout_is("c\nnoold\n");
    }
}
