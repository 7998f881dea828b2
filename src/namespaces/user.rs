//! `--user`, `--group-add`: names resolved in the container's own /etc/passwd
//! and /etc/group, as runc and podman resolve them.

use anyhow::{Result, bail};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

struct Passwd<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct Group<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn passwd_entries(text: &str) -> impl Iterator<Item = Passwd<'_>> {
    text.lines().filter(|l| !l.starts_with('#')).filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 {
            return None;
        }
        Some(Passwd {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f.get(5).copied().unwrap_or(""),
        })
    })
}

fn group_entries(text: &str) -> impl Iterator<Item = Group<'_>> {
    text.lines().filter(|l| !l.starts_with('#')).filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 3 {
            return None;
        }
        let members = f
            .get(3)
            .map(|m| m.split(',').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        Some(Group {
            name: f[0],
            gid: f[2].parse().ok()?,
            members,
        })
    })
}

fn lookup_group(name_or_id: &str, group: &str) -> Result<u32> {
    if let Ok(g) = name_or_id.parse::<u32>() {
        return Ok(g);
    }
    match group_entries(group).find(|g| g.name == name_or_id) {
        Some(g) => Ok(g.gid),
        None => bail!("unable to find group {name_or_id}: no matching entries in the container's /etc/group"),
    }
}

/// Resolves `user[:group]` ("" is root) with the container's passwd and
/// group file contents (empty when the files do not exist).
pub fn resolve(spec: &str, group_add: &[String], passwd: &str, group: &str) -> Result<ResolvedUser> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let (uid, mut gid, name, home) = match u.parse::<u32>() {
        Ok(uid) => match passwd_entries(passwd).find(|p| p.uid == uid) {
            Some(p) => (uid, p.gid, Some(p.name.to_string()), p.home.to_string()),
            None => (uid, 0, None, "/".to_string()),
        },
        Err(_) => match passwd_entries(passwd).find(|p| p.name == u) {
            Some(p) => (p.uid, p.gid, Some(p.name.to_string()), p.home.to_string()),
            None => bail!("unable to find user {u}: no matching entries in the container's /etc/passwd"),
        },
    };
    if let Some(g) = g {
        if g.is_empty() {
            bail!("invalid --user {spec:?}: empty group");
        }
        gid = lookup_group(g, group)?;
    }
    // What podman 4 sets: with an explicit group, that group alone; else the
    // groups that list the user by name plus the primary group, or none at all
    // when no group lists the user.
    let mut additional = Vec::new();
    if g.is_some() {
        additional.push(gid);
    } else if let Some(n) = &name {
        for gr in group_entries(group) {
            if gr.members.contains(&n.as_str()) && !additional.contains(&gr.gid) {
                additional.push(gr.gid);
            }
        }
        if !additional.is_empty() && !additional.contains(&gid) {
            additional.push(gid);
        }
    }
    for ga in group_add {
        let id = lookup_group(ga, group)?;
        if !additional.contains(&id) {
            additional.push(id);
        }
    }
    let home = if home.is_empty() { "/".to_string() } else { home };
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids: additional,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\ntester:x:1000:1000::/home/tester:/bin/sh\n# c\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:tester\ntester:x:1000:\naudio:x:29:tester,other\n";

    #[test]
    fn names_and_ids() {
        let r = resolve("", &[], PASSWD, GROUP).unwrap();
        assert_eq!((r.uid, r.gid, r.home.as_str()), (0, 0, "/root"));
        let t = resolve("tester", &[], PASSWD, GROUP).unwrap();
        assert_eq!((t.uid, t.gid), (1000, 1000));
        assert_eq!(t.additional_gids, vec![10, 29, 1000]);
        assert_eq!(t.home, "/home/tester");
        let n = resolve("4242", &[], PASSWD, GROUP).unwrap();
        assert_eq!((n.uid, n.gid, n.home.as_str()), (4242, 0, "/"));
        let g = resolve("tester:wheel", &[], PASSWD, GROUP).unwrap();
        assert_eq!((g.gid, g.additional_gids.clone()), (10, vec![10]));
        let a = resolve("1000:1000", &["audio".into(), "7".into()], PASSWD, GROUP).unwrap();
        assert_eq!(a.additional_gids, vec![1000, 29, 7]);
        assert!(resolve("root", &[], PASSWD, GROUP).unwrap().additional_gids.is_empty());
    }

    #[test]
    fn unknown_names_fail_clearly() {
        let e = resolve("nobody_here", &[], PASSWD, GROUP).unwrap_err();
        assert!(e.to_string().contains("nobody_here"));
        assert!(resolve("tester:nogroup", &[], PASSWD, GROUP).is_err());
        assert!(resolve("root", &["ghosts".into()], PASSWD, GROUP).is_err());
    }
}
