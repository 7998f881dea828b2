//! Tests for the image verbs: `import`, `images`, `image inspect`, `tag`, `rmi`
//! and `image prune`. Expected values are what podman 4.3.1 printed for the same
//! busybox tarball (tests/fixtures/podman-reference.md, "Images").

use serde_json::{Value, json};

use crate::common::*;

/// The bare 64-hex ID from what `import` printed (`sha256:<hex>`).
fn bare(id: &str) -> &str {
    id.strip_prefix("sha256:").unwrap_or(id)
}

/// `image inspect NAME`, first (only) element.
fn inspect_image(env: &TestEnv, name: &str) -> Value {
    let out = env.casco(["image", "inspect", name]).run().success();
    let v = out.json();
    let arr = v
        .as_array()
        .unwrap_or_else(|| panic!("{}", out.report("expected a JSON array")));
    assert_eq!(arr.len(), 1, "{}", out.report("expected one image"));
    arr[0].clone()
}

both! {
    /// podman 4.3.1: `import TAR bb` prints `sha256:<64 hex>` on stdout (progress
    /// goes to stderr); `images -q` prints its first 12 hex digits and `images -q
    /// --no-trunc` the whole `sha256:<hex>`.
    fn import_prints_the_image_id(env) {
        let id = env.import_busybox("bb");
        assert!(id.starts_with("sha256:") && is_hex(bare(&id), 64), "import printed {id:?}");
        env.casco(["images", "-q"]).run().success().stdout_is(&format!("{}\n", &bare(&id)[..12]));
        env.casco(["images", "-q", "--no-trunc"]).run().success().stdout_is(&format!("{id}\n"));
        assert_eq!(inspect_image(&env, "bb")["Id"], json!(bare(&id)));
    }
}

both! {
    /// podman 4.3.1: `import -q` prints the same single line.
    fn import_quiet_prints_only_the_id(env) {
        let out = env
            .casco(["import", "-q", busybox_tar().to_str().unwrap(), "bb"])
            .run()
            .success();
        let lines = out.lines();
        assert_eq!(lines.len(), 1, "{}", out.report("expected one line"));
        assert!(lines[0].starts_with("sha256:") && is_hex(&lines[0][7..], 64), "{}", out.report("expected sha256:<hex>"));
    }
}

both! {
    /// podman 4.3.1: `import - NAME` reads the tarball from standard input.
    fn import_from_stdin(env) {
        let tar = std::fs::read(busybox_tar()).unwrap();
        let out = env.casco(["import", "-", "fromstdin"]).stdin(tar).run().success();
        assert!(out.stdout_trim().starts_with("sha256:"), "{}", out.report("expected the image ID"));
        let img = inspect_image(&env, "fromstdin");
        assert_eq!(img["RepoTags"], json!(["localhost/fromstdin:latest"]));
        env.casco(["run", "--rm", "fromstdin", "true"]).run().success();
    }
}

both! {
    /// podman 4.3.1: an import with no name is listed as `<none>` `<none>`; its
    /// inspect shows `RepoTags: []`.
    fn import_without_a_name_is_dangling(env) {
        let out = env
            .casco(["import", busybox_tar().to_str().unwrap()])
            .run()
            .success();
        let id = out.stdout_trim().to_string();
        let t = env.casco(["images"]).run().success().table();
        assert_eq!(t.rows.len(), 1, "{t:?}");
        assert_eq!(t.rows[0]["REPOSITORY"], "<none>");
        assert_eq!(t.rows[0]["TAG"], "<none>");
        assert_eq!(t.rows[0]["IMAGE ID"], &bare(&id)[..12]);
        let img = inspect_image(&env, &bare(&id)[..12]);
        assert_eq!(img["RepoTags"], json!([]));
    }
}

both! {
    /// podman 4.3.1: a missing source file, or an unknown `--change`
    /// instruction, fails with 125 and creates no image.
    fn import_errors(env) {
        env.casco(["import", "/nonexistent.tar", "x"]).run().code(125).says_why();
        env.casco(["import", "--change", "BOGUS x", busybox_tar().to_str().unwrap(), "bogus"])
            .run()
            .code(125)
            .says_why();
        env.casco(["images", "-q"]).run().success().stdout_is("");
    }
}

both! {
    /// podman 4.3.1 `images`:
    /// `REPOSITORY    TAG         IMAGE ID      CREATED             SIZE`
    /// `localhost/bb  latest      3acbc347df1a  About a minute ago  2.13 MB`
    fn images_table(env) {
        let id = env.import_busybox("bb");
        let out = env.casco(["images"]).run().success();
        let t = out.table();
        assert_eq!(t.columns, ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], "{}", out.stdout);
        assert_eq!(t.rows.len(), 1, "{}", out.stdout);
        let row = &t.rows[0];
        assert_eq!(row["REPOSITORY"], "localhost/bb");
        assert_eq!(row["TAG"], "latest");
        assert_eq!(row["IMAGE ID"], &bare(&id)[..12]);
        assert!(row["CREATED"].ends_with("ago"), "CREATED {:?}", row["CREATED"]);
        // The tarball is about 2.1 MB; podman prints decimal units with 3 digits.
        let size = &row["SIZE"];
        let (num, unit) = size.split_once(' ').unwrap_or_else(|| panic!("SIZE {size:?}"));
        assert_eq!(unit, "MB", "SIZE {size:?}");
        assert!(num.parse::<f64>().is_ok_and(|n| (1.5..3.0).contains(&n)), "SIZE {size:?}");
        // --no-trunc shows the whole sha256:<hex>.
        let t = env.casco(["images", "--no-trunc"]).run().success().table();
        assert_eq!(t.rows[0]["IMAGE ID"], id);
    }
}

both! {
    /// podman 4.3.1: with no images, `images` prints only the header.
    fn images_empty_store(env) {
        let out = env.casco(["images"]).run().success();
        let t = out.table();
        assert_eq!(t.columns, ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]);
        assert!(t.rows.is_empty(), "{}", out.stdout);
    }
}

both! {
    /// podman 4.3.1 `images --format json`: an array of objects with Id (64 hex,
    /// no prefix), Names (array), RepoTags, RepoDigests, Size (number),
    /// Containers (number), Labels (null), Digest (sha256:..), Created (Unix
    /// seconds), CreatedAt (RFC 3339), Dangling only for unnamed images.
    fn images_json(env) {
        let id = env.import_busybox("bb");
        let out = env.casco(["images", "--format", "json"]).run().success();
        let v = out.json();
        let arr = v.as_array().unwrap_or_else(|| panic!("{}", out.report("expected an array")));
        assert_eq!(arr.len(), 1, "{}", out.stdout);
        let img = &arr[0];
        assert_keys(
            img,
            "images --format json",
            &[
                ("Id", "string"),
                ("Names", "array"),
                ("RepoDigests", "null|array"),
                ("Size", "number"),
                ("Containers", "number"),
                ("Labels", "null|object"),
                ("Digest", "string"),
                ("Created", "number"),
                ("CreatedAt", "string"),
            ],
        );
        assert_eq!(img["Id"], json!(bare(&id)));
        assert_eq!(img["Names"], json!(["localhost/bb:latest"]));
        assert_eq!(img["Containers"], json!(0));
        let digest = img["Digest"].as_str().unwrap();
        assert!(digest.starts_with("sha256:") && is_hex(&digest[7..], 64), "Digest {digest}");
        assert!(img["Size"].as_u64().is_some_and(|s| s > 1_000_000), "Size {}", img["Size"]);
        assert!(is_rfc3339(img["CreatedAt"].as_str().unwrap()), "CreatedAt {}", img["CreatedAt"]);
        env.casco(["create", "bb", "true"]).run().success();
        let v = env.casco(["images", "--format", "json"]).run().success().json();
        assert_eq!(v[0]["Containers"], json!(1), "one container uses the image now");
    }
}

both! {
    /// podman 4.3.1: two names for one image are two rows of `images`, but
    /// `images -q` prints the ID once.
    fn images_quiet_prints_each_id_once(env) {
        let id = env.import_busybox("bb");
        env.casco(["tag", "bb", "bb2"]).run().success();
        let t = env.casco(["images"]).run().success().table();
        let mut names: Vec<String> = t.rows.iter().map(|r| format!("{}:{}", r["REPOSITORY"], r["TAG"])).collect();
        names.sort();
        assert_eq!(names, ["localhost/bb2:latest", "localhost/bb:latest"]);
        env.casco(["images", "-q"]).run().success().stdout_is(&format!("{}\n", &bare(&id)[..12]));
    }
}

both! {
    /// podman 4.3.1 `image inspect bb` (trimmed): Id, Digest, RepoTags
    /// ["localhost/bb:latest"], RepoDigests, Created (RFC 3339), Config {},
    /// Architecture "amd64", Os "linux", Size, RootFS {Type "layers", Layers
    /// [sha256 of the uncompressed tarball]}, History [1 entry], Labels null.
    fn image_inspect_fields(env) {
        let id = env.import_busybox("bb");
        let img = inspect_image(&env, "bb");
        assert_keys(
            &img,
            "image inspect",
            &[
                ("Id", "string"),
                ("Digest", "string"),
                ("RepoTags", "array"),
                ("RepoDigests", "null|array"),
                ("Created", "string"),
                ("Config", "object"),
                ("Architecture", "string"),
                ("Os", "string"),
                ("Size", "number"),
                ("RootFS", "object"),
                ("History", "array"),
                ("Labels", "null|object"),
            ],
        );
        assert_eq!(img["Id"], json!(bare(&id)));
        assert_eq!(img["RepoTags"], json!(["localhost/bb:latest"]));
        assert!(is_rfc3339(img["Created"].as_str().unwrap()), "Created {}", img["Created"]);
        assert_eq!(img["Architecture"], json!(oci_arch()));
        assert_eq!(img["Os"], json!("linux"));
        assert_eq!(img["RootFS"]["Type"], json!("layers"));
        // The diff ID of an uncompressed layer is the sha256 of the tar itself.
        assert_eq!(img["RootFS"]["Layers"], json!([sha256_file(busybox_tar())]));
        assert_eq!(img["History"].as_array().map(Vec::len), Some(1), "History {}", img["History"]);
        let labels = &img["Labels"];
        assert!(labels.is_null() || labels.as_object().is_some_and(|m| m.is_empty()), "Labels {labels}");
        // The image config of a plain import sets nothing.
        for key in ["Cmd", "Entrypoint", "Env", "User", "WorkingDir"] {
            let v = &img["Config"][key];
            assert!(
                v.is_null() || v.as_str() == Some("") || v.as_array().is_some_and(|a| a.is_empty()),
                "Config.{key} {v}"
            );
        }
        // Generic `inspect` finds the image when no container has that name.
        let v = env.casco(["inspect", "bb"]).run().success().json();
        assert_eq!(v[0]["Id"], json!(bare(&id)));
        // And by ID prefix.
        assert_eq!(inspect_image(&env, &bare(&id)[..12])["Id"], json!(bare(&id)));
    }
}

both! {
    /// podman 4.3.1: `image inspect nosuch` prints `[]` and exits 125.
    fn image_inspect_unknown(env) {
        let out = env.casco(["image", "inspect", "nosuch"]).run().code(125).says_why();
        assert_eq!(out.stdout_trim(), "[]", "{}", out.report("expected [] on stdout"));
    }
}

both! {
    /// podman 4.3.1:
    /// `import --change 'CMD ["/bin/sh","-c","echo hi"]' --change ENV=A=b
    ///  --change WORKDIR=/tmp --change USER=tester --change 'LABEL k=v'
    ///  --change 'ENTRYPOINT ["/bin/env"]' --change EXPOSE=8080
    ///  --change STOPSIGNAL=SIGINT --change VOLUME=/data -m "my message" TAR changed`
    /// gives Config {"User":"tester","ExposedPorts":{"8080/tcp":{}},"Env":["A=b"],
    /// "Entrypoint":["/bin/env"],"Cmd":["/bin/sh","-c","echo hi"],"Volumes":{"/data":{}},
    /// "WorkingDir":"/tmp","Labels":{"k":"v"},"StopSignal":"2"}, top-level Labels
    /// {"k":"v"} and the message as Comment; `run --rm changed` prints "hi".
    fn import_change_sets_the_config(env) {
        let changes = [
            r#"CMD ["/bin/sh","-c","echo hi"]"#,
            "ENV=A=b",
            "WORKDIR=/tmp",
            "USER=tester",
            "LABEL k=v",
            r#"ENTRYPOINT ["/bin/env"]"#,
            "EXPOSE=8080",
            "STOPSIGNAL=SIGINT",
            "VOLUME=/data",
        ];
        let mut import = env.casco(["import"]);
        for c in changes {
            import = import.arg("--change").arg(c);
        }
        import.arg("-m").arg("my message").arg(busybox_tar()).arg("changed").run().success();
        let img = inspect_image(&env, "changed");
        let cfg = &img["Config"];
        assert_eq!(cfg["User"], json!("tester"));
        assert_eq!(cfg["ExposedPorts"], json!({"8080/tcp": {}}));
        assert_eq!(cfg["Env"], json!(["A=b"]));
        assert_eq!(cfg["Entrypoint"], json!(["/bin/env"]));
        assert_eq!(cfg["Cmd"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(cfg["Volumes"], json!({"/data": {}}));
        assert_eq!(cfg["WorkingDir"], json!("/tmp"));
        assert_eq!(cfg["Labels"], json!({"k": "v"}));
        // podman 4.3.1 stores the number ("2"); Docker stores the name. Either is a
        // faithful record of SIGINT.
        assert!(cfg["StopSignal"] == json!("2") || cfg["StopSignal"] == json!("SIGINT"), "StopSignal {}", cfg["StopSignal"]);
        assert_eq!(img["Labels"], json!({"k": "v"}));
        assert_eq!(img["History"][0]["comment"], json!("my message"));
        // ENTRYPOINT + CMD: /bin/env /bin/sh -c "echo hi".
        env.casco(["run", "--rm", "changed"]).run().success().stdout_is("hi\n");
        // A command replaces CMD only; WORKDIR and USER apply.
        env.casco(["run", "--rm", "changed", "pwd"]).run().success().stdout_is("/tmp\n");
        env.casco(["run", "--rm", "changed", "id", "-u"]).run().success().stdout_is("1000\n");
        env.casco(["run", "--rm", "changed", "sh", "-c", "echo $A"]).run().success().stdout_is("b\n");
    }
}

both! {
    /// podman 4.3.1: `--change "CMD echo shell form"` (shell form) gives Cmd
    /// ["/bin/sh","-c","echo shell form"]; `ENV C=d` gives "C=d".
    fn import_change_shell_form(env) {
        env.casco([
            "import",
            "--change",
            "CMD echo shell form",
            "--change",
            "ENV C=d",
            busybox_tar().to_str().unwrap(),
            "shellcmd",
        ])
        .run()
        .success();
        let img = inspect_image(&env, "shellcmd");
        assert_eq!(img["Config"]["Cmd"], json!(["/bin/sh", "-c", "echo shell form"]));
        assert_eq!(img["Config"]["Env"], json!(["C=d"]));
        env.casco(["run", "--rm", "shellcmd"]).run().success().stdout_is("shell form\n");
    }
}

both! {
    /// podman 4.3.1: `tag bb bb:v1 example.com/foo/bar:2` prints nothing; the
    /// image's RepoTags are then ["localhost/bb:latest","localhost/bb:v1",
    /// "example.com/foo/bar:2"] (in that order) and every name runs without a
    /// pull. `tag nosuch x` exits 125.
    fn tag_adds_names(env) {
        let id = env.import_busybox("bb");
        env.casco(["tag", "bb", "bb:v1", "example.com/foo/bar:2"]).run().success().stdout_is("");
        let img = inspect_image(&env, "bb");
        assert_eq!(
            img["RepoTags"],
            json!(["localhost/bb:latest", "localhost/bb:v1", "example.com/foo/bar:2"])
        );
        let t = env.casco(["images"]).run().success().table();
        assert_eq!(t.rows.len(), 3, "{t:?}");
        assert!(t.column("IMAGE ID").iter().all(|i| *i == &bare(&id)[..12]), "{t:?}");
        env.casco(["run", "--rm", "example.com/foo/bar:2", "true"]).run().success();
        env.casco(["run", "--rm", "bb:v1", "true"]).run().success();
        env.casco(["tag", "nosuch", "x"]).run().code(125).says_why();
    }
}

both! {
    /// podman 4.3.1: `rmi bb:v1` of an image with another name prints
    /// `Untagged: localhost/bb:v1`; removing the last name prints
    /// `Untagged: localhost/bb:latest` then `Deleted: <64 hex>`.
    fn rmi_untags_then_deletes(env) {
        let id = env.import_busybox("bb");
        env.casco(["tag", "bb", "bb:v1"]).run().success();
        env.casco(["rmi", "bb:v1"]).run().success().stdout_is("Untagged: localhost/bb:v1\n");
        assert_eq!(inspect_image(&env, "bb")["RepoTags"], json!(["localhost/bb:latest"]));
        env.casco(["rmi", "bb"])
            .run()
            .success()
            .stdout_is(&format!("Untagged: localhost/bb:latest\nDeleted: {}\n", bare(&id)));
        env.casco(["images", "-q"]).run().success().stdout_is("");
    }
}

both! {
    /// podman 4.3.1: `rmi nosuch` exits 1 (not 125); `rmi -i nosuch` exits 0.
    fn rmi_unknown_image(env) {
        env.casco(["rmi", "nosuch"]).run().code(1).says_why();
        env.casco(["rmi", "-i", "nosuch"]).run().success();
    }
}

both! {
    /// podman 4.3.1: `rmi` of an image a container uses exits 2 ("image is in use
    /// by a container") and removes nothing; `rmi -f` removes the containers
    /// (running ones too) and then the image.
    fn rmi_of_an_image_in_use(env) {
        let id = env.import_busybox("bb");
        env.casco(["create", "--name", "made", "bb", "true"]).run().success();
        env.casco(["run", "-d", "--name", "up", "bb", "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"])
            .run()
            .success();
        env.casco(["rmi", "bb"]).run().code(2).says_why();
        assert_eq!(inspect_image(&env, "bb")["Id"], json!(bare(&id)));
        let out = env.casco(["rmi", "-f", "bb"]).run().success();
        assert!(out.stdout.contains("Untagged: localhost/bb:latest\n"), "{}", out.report("expected Untagged"));
        assert!(out.stdout.contains(&format!("Deleted: {}\n", bare(&id))), "{}", out.report("expected Deleted"));
        env.casco(["ps", "-aq"]).run().success().stdout_is("");
        env.casco(["images", "-q"]).run().success().stdout_is("");
        assert_no_leftovers(&env);
    }
}

both! {
    /// podman 4.3.1: `rmi <ID>` of an image with two names exits 125 ("by ID with
    /// more than one tag ... please force removal"); `rmi -f <ID>` untags both and
    /// deletes it.
    fn rmi_by_id_with_several_names(env) {
        let id = env.import_busybox("bb");
        env.casco(["tag", "bb", "bb:two"]).run().success();
        let short = &bare(&id)[..12];
        env.casco(["rmi", short]).run().code(125).says_why();
        let out = env.casco(["rmi", "-f", short]).run().success();
        assert_eq!(
            out.lines(),
            [
                "Untagged: localhost/bb:latest",
                "Untagged: localhost/bb:two",
                &format!("Deleted: {}", bare(&id))
            ],
            "{}",
            out.report("unexpected rmi -f output")
        );
        env.casco(["images", "-q"]).run().success().stdout_is("");
    }
}

both! {
    /// podman 4.3.1: `image prune -f` removes unnamed images and prints their
    /// IDs (64 hex); `image prune -af` also removes named ones no container uses,
    /// and keeps an image a container uses.
    fn image_prune(env) {
        let unnamed = env
            .casco(["import", "--change", "LABEL which=unnamed", busybox_tar().to_str().unwrap()])
            .run()
            .success()
            .stdout_trim()
            .to_string();
        let named = env
            .casco(["import", "--change", "LABEL which=named", busybox_tar().to_str().unwrap(), "named"])
            .run()
            .success()
            .stdout_trim()
            .to_string();
        let used = env
            .casco(["import", "--change", "LABEL which=used", busybox_tar().to_str().unwrap(), "used"])
            .run()
            .success()
            .stdout_trim()
            .to_string();
        assert!(unnamed != named && named != used, "different configs give different IDs");
        env.casco(["create", "used", "true"]).run().success();
        env.casco(["image", "prune", "-f"]).run().success().stdout_is(&format!("{}\n", bare(&unnamed)));
        let mut left = env.casco(["images", "-q", "--no-trunc"]).run().success().lines().iter().map(|s| s.to_string()).collect::<Vec<_>>();
        left.sort();
        let mut want = vec![named.clone(), used.clone()];
        want.sort();
        assert_eq!(left, want);
        env.casco(["image", "prune", "-af"]).run().success().stdout_is(&format!("{}\n", bare(&named)));
        env.casco(["images", "-q", "--no-trunc"]).run().success().stdout_is(&format!("{used}\n"));
    }
}

both! {
    /// podman 4.3.1: `rmi` of one of an image's two names only untags it (the
    /// layers stay); `rmi` of the last name deletes the image. `rmi -f` of an
    /// image a running container uses removes the container (its process
    /// dies) and the image. Either way the store keeps no layer and no blob of
    /// a deleted image.
    fn rmi_leaves_no_layer_or_blob(env) {
        let id = env.import_busybox("bb");
        env.casco(["tag", "bb", "other"]).run().success();
        let layers = store_entries(&env, "layers");
        assert!(!layers.is_empty(), "no layer in the store after import");
        env.casco(["rmi", "bb"]).run().success().stdout_is("Untagged: localhost/bb:latest\n");
        assert_eq!(inspect_image(&env, "other")["Id"], json!(bare(&id)));
        assert_eq!(store_entries(&env, "layers"), layers);
        env.casco(["run", "--rm", "other", "true"]).run().success();
        env.casco(["rmi", "other"])
            .run()
            .success()
            .stdout_is(&format!("Untagged: localhost/other:latest\nDeleted: {}\n", bare(&id)));
        assert_eq!(store_entries(&env, "layers"), Vec::<String>::new(), "layers left after rmi");
        assert_eq!(store_entries(&env, "blobs/sha256"), Vec::<String>::new(), "blobs left after rmi");

        env.import_busybox("bb");
        env.casco(["run", "-d", "--name", "up", "bb", "sleep", "1000"]).run().success();
        let pid = env.inspect_container("up")["State"]["Pid"].as_i64().unwrap_or(0);
        assert!(pid > 0);
        env.casco(["rmi", "-f", "bb"]).run().success();
        env.casco(["ps", "-aq"]).run().success().stdout_is("");
        env.casco(["images", "-q"]).run().success().stdout_is("");
        wait_until("the container's process to go", std::time::Duration::from_secs(10), || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map_or(true, |s| s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')))
        });
        assert_eq!(store_entries(&env, "layers"), Vec::<String>::new(), "layers left after rmi -f");
        assert_eq!(store_entries(&env, "blobs/sha256"), Vec::<String>::new(), "blobs left after rmi -f");
        assert_no_leftovers(&env);
    }
}
