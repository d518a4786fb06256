//! The NixOS module (nix/module.nix) and the flake around it, checked without nixpkgs' packages:
//! every .nix file parses, and the module evaluated with nixpkgs' lib against the option stubs of
//! nix/tests declares what WSL and init need (nix/tests/checks.nix, one topic per test here),
//! refuses bad values with a clear message, and is what the generated spec.json of the NixOS
//! test system says. Needs `nix-instantiate` (Debian's nix-bin): without it every test fails
//! and says so. Nothing here builds `system.build.*`: see docs/nixos-module.md.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use wsl_common::{paths, units};
use wsl_sim::{repo, scratch_dir, text};

const NO_NIX: &str = "nix-instantiate is missing: the NixOS module's tests need Debian's nix-bin \
                      (apt-get install nix-bin, or scripts/lib/prerequisites)";

/// nix-instantiate, or the test fails saying how to get it.
fn nix_instantiate() -> Command {
    let found = Command::new("nix-instantiate").arg("--version").output();
    assert!(found.is_ok_and(|o| o.status.success()), "{NO_NIX}");
    nix_state_made();
    bare_nix_instantiate()
}

fn bare_nix_instantiate() -> Command {
    let mut cmd = Command::new("nix-instantiate");
    // Debian's nix.conf names a build-users-group that does not exist; evaluation needs none.
    cmd.env("NIX_CONFIG", "build-users-group =");
    cmd
}

/// On a machine where Nix never ran, its first run creates /nix/var/nix (profiles, gcroots);
/// the tests run in parallel, and two first runs at once race on those symlinks ("creating
/// symlink from '/nix/var/nix/gcroots/profiles' ...: File exists", seen on a fresh clone's CI
/// run). One evaluation first, the others waiting for it.
fn nix_state_made() {
    static MADE: OnceLock<()> = OnceLock::new();
    MADE.get_or_init(|| {
        let out = run(bare_nix_instantiate().args(["--eval", "--expr", "1"]));
        let (_, stderr) = text(&out);
        assert!(
            out.status.success(),
            "nix-instantiate --eval failed: {stderr}"
        );
    });
}

/// nixpkgs' lib/, unpacked once by scripts/lib/nixpkgs-lib ($NIXPKGS elsewhere).
fn nixpkgs_lib() -> &'static str {
    static LIB: OnceLock<String> = OnceLock::new();
    LIB.get_or_init(|| {
        let out = run(&mut Command::new(repo().join("scripts/lib/nixpkgs-lib")));
        let (stdout, stderr) = text(&out);
        assert!(
            out.status.success(),
            "scripts/lib/nixpkgs-lib failed: {stderr}"
        );
        stdout.trim().to_owned()
    })
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// A Nix list of strings.
fn nix_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = items.into_iter().map(|s| format!("{s:?}")).collect();
    format!("[ {} ]", quoted.join(" "))
}

/// Evaluates attribute `attr` of nix/tests/checks.nix (with `extra` as the probe module).
fn eval_checks(attr: &str, extra: &str) -> Output {
    run(nix_instantiate()
        .args(["--eval", "--strict", "--json", "--readonly-mode"])
        .arg(repo().join("nix/tests/checks.nix"))
        .args(["--arg", "nixpkgsLib", nixpkgs_lib()])
        .args([
            "--arg",
            "hostileUnits",
            &nix_list(units::hostile_unit_names()),
        ])
        .args(["--arg", "extra", extra])
        .args(["-A", attr]))
}

/// One topic of nix/tests/checks.nix: its list of failures must be empty.
fn check(topic: &str) {
    let out = eval_checks(topic, "{ }");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "evaluating {topic} failed:\n{stderr}");
    assert_eq!(
        stdout.trim(),
        "[]",
        "{topic}: the module declares otherwise"
    );
}

#[test]
fn every_nix_file_parses() {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                if !matches!(name, "target" | ".git" | "corpus" | "artifacts") {
                    walk(&path, found);
                }
            } else if name.ends_with(".nix") {
                found.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo(), &mut files);
    for expected in [
        "flake.nix",
        "default.nix",
        "nix/module.nix",
        "nix/build.nix",
        "nix/spec.nix",
    ] {
        assert!(
            files.contains(&repo().join(expected)),
            "{expected} is missing"
        );
    }
    for file in &files {
        let out = run(nix_instantiate().arg("--parse").arg(file));
        let (_, stderr) = text(&out);
        assert!(out.status.success(), "{}: {stderr}", file.display());
    }
}

#[test]
fn module_paths_are_common_paths() {
    for (attr, expected) in [
        ("init", paths::INIT.to_owned()),
        (
            "initConfig",
            paths::INIT_CONFIG.trim_start_matches("/etc/").to_owned(),
        ),
    ] {
        let out = eval_checks(attr, "{ }");
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(
            stdout.trim(),
            format!("{expected:?}"),
            "nix/paths.nix {attr}"
        );
    }
}

#[test]
fn root_shell_is_init_and_root_is_in_group_root() {
    check("rootShell");
}

#[test]
fn default_user_is_uid_1000_in_wheel_lingering_with_passwordless_sudo() {
    check("defaultUser");
}

#[test]
fn etc_entries_have_the_declared_text() {
    check("etc");
}

#[test]
fn hostile_units_and_features_are_off() {
    check("units");
}

#[test]
fn native_and_wrapper_modes() {
    check("modes");
}

#[test]
fn activation_installs_init_and_the_bin_links() {
    check("activation");
}

#[test]
fn windows_path_is_appended() {
    check("windowsPath");
}

#[test]
fn module_does_nothing_unless_enabled() {
    check("disabled");
}

#[test]
fn bad_values_are_refused_with_a_clear_message() {
    let cases: &[(&str, &[&str])] = &[
        (
            r#"{ wsl.systemd = "systemd"; }"#,
            &["wsl.systemd", r#""native", "wrapper""#],
        ),
        (
            "{ wsl.bootTimeout = 0; }",
            &["wsl.bootTimeout", "positive integer"],
        ),
        (
            r#"{ wsl.defaultUser = "root"; }"#,
            &["Failed assertions", "wsl.defaultUser cannot be root"],
        ),
        (
            r#"{ wsl.defaultUser = "Bad User"; }"#,
            &["wsl.defaultUser", "pattern"],
        ),
        (
            r#"{ wsl.wslConf."bad section".x = 1; }"#,
            &[
                "Failed assertions",
                "section [bad section]",
                "stops at the first line",
            ],
        ),
        (
            r#"{ wsl.wslConf.boot.command = "a\nb"; }"#,
            &["Failed assertions", "the value of boot.command (a newline)"],
        ),
        (
            "{ wsl.wslConf.boot.Systemd = true; }",
            &[
                "Failed assertions",
                "keys of [boot] differing only in case (Systemd systemd)",
            ],
        ),
        (
            r#"{ wsl.wslConf.user.default = "nixos"; }"#,
            &[
                "Failed assertions",
                "wsl.wslConf.user.default must stay root in wrapper mode",
            ],
        ),
        (
            r#"{ wsl.systemd = "native"; wsl.wslConf.user.default = "root"; }"#,
            &[
                "Failed assertions",
                "wsl.wslConf.user.default must be wsl.defaultUser (nixos) in native mode",
            ],
        ),
        (
            "{ wsl.wslConf.boot.systemd = [ 1 ]; }",
            &["wsl.wslConf.boot.systemd", "is not of type"],
        ),
        (
            r#"{ users.users.root.shell = "/bin/bash"; }"#,
            &["users.users.root.shell", "conflicting definition values"],
        ),
    ];
    for (module, expected) in cases {
        let out = eval_checks("probe", module);
        let (_, stderr) = text(&out);
        assert!(!out.status.success(), "{module} was accepted");
        for part in *expected {
            assert!(
                stderr.contains(part),
                "{module}: the error does not say {part:?}:\n{stderr}"
            );
        }
    }
    // and the probe itself accepts a good value
    let out = eval_checks(
        "probe",
        r#"{ wsl.systemd = "native"; wsl.bootTimeout = 5; }"#,
    );
    assert!(out.status.success(), "{}", text(&out).1);
}

/// scripts/lib/nixos-spec, from the repository or from a copy of it.
fn nixos_spec(top: &Path, args: &[&Path]) -> Output {
    nix_instantiate(); // fails the test loudly when it is missing
    run(Command::new(top.join("scripts/lib/nixos-spec")).args(args))
}

// The NixOS test tree's spec (scripts/make-test-rootfs) is this file: it must be what the module
// declares, so the end-to-end tests boot what the module declares.
#[test]
fn committed_spec_is_what_the_module_declares() {
    let committed = repo().join("scripts/lib/nixos-spec-module.json");
    let out = nixos_spec(&repo(), &[Path::new("--check"), &committed]);
    let (_, stderr) = text(&out);
    assert!(
        out.status.success(),
        "{stderr}(run scripts/lib/nixos-spec after changing nix/)"
    );
}

#[test]
fn changing_root_shell_or_user_changes_the_generated_spec() {
    let dir = scratch_dir("nix-module-spec-change");
    let copy = dir.join("top");
    fs::create_dir_all(copy.join("scripts/lib")).expect("mkdir");
    let cp = run(Command::new("cp")
        .arg("-r")
        .arg(repo().join("nix"))
        .arg(repo().join("Cargo.toml"))
        .arg(&copy));
    assert!(cp.status.success(), "{}", text(&cp).1);
    for script in ["nixos-spec", "nixpkgs-lib"] {
        fs::copy(
            repo().join("scripts/lib").join(script),
            copy.join("scripts/lib").join(script),
        )
        .expect("copy script");
    }
    let edit = |file: &str, from: &str, to: &str| {
        let path = copy.join(file);
        let before = fs::read_to_string(&path).expect("read");
        assert!(before.contains(from), "{file} no longer contains {from:?}");
        fs::write(&path, before.replace(from, to)).expect("write");
    };
    let generate = |name: &str| {
        let out_file = dir.join(name);
        let out = nixos_spec(&copy, &[&out_file]);
        assert!(out.status.success(), "{}", text(&out).1);
        fs::read_to_string(out_file).expect("spec")
    };
    let committed = repo().join("scripts/lib/nixos-spec-module.json");

    let before = generate("before.json");
    assert!(
        before.contains(r#""shell":"/usr/libexec/nixos-wsl/init""#),
        "{before}"
    );
    assert!(before.contains(r#""nixos":{"#), "{before}");

    edit(
        "nix/module.nix",
        "shell = paths.init;",
        r#"shell = "/opt/other-init";"#,
    );
    let shell = generate("shell.json");
    assert!(shell.contains(r#""shell":"/opt/other-init""#), "{shell}");
    assert_ne!(shell, before);
    let out = nixos_spec(&copy, &[Path::new("--check"), &committed]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success(), "--check accepted a stale spec");
    assert!(
        stderr.contains("is not what the module declares now"),
        "{stderr}"
    );

    edit(
        "nix/example.nix",
        r#"wsl.defaultUser = "nixos";"#,
        r#"wsl.defaultUser = "alice";"#,
    );
    let user = generate("user.json");
    assert!(user.contains(r#""alice":{"#), "{user}");
    assert!(!user.contains(r#""nixos":{"#), "{user}");
    assert!(user.contains(r#"user = alice\n"#), "{user}");
}

#[test]
fn nixos_spec_without_nix_instantiate_fails_and_says_so() {
    let dir = scratch_dir("nix-module-no-nix");
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).expect("mkdir");
    // bash and the few tools the script runs before it looks for nix-instantiate
    for tool in ["bash", "dirname", "cat"] {
        let found = ["/usr/bin", "/bin"]
            .iter()
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{tool} not found"));
        std::os::unix::fs::symlink(found, bin.join(tool)).expect("link");
    }
    let out = run(Command::new(bin.join("bash"))
        .arg(repo().join("scripts/lib/nixos-spec"))
        .arg(dir.join("spec.json"))
        .env("PATH", &bin));
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("nix-instantiate is missing"), "{stderr}");
    assert!(!dir.join("spec.json").exists(), "a spec was written");
}

#[test]
fn system_builds_are_wired_to_the_tarball_builder_and_packer() {
    check("build");
}

/// A stand-in nixpkgs for default.nix and flake.nix: the real lib, the stub packages, and an
/// eval-config.nix that evaluates against the stubs.
fn fake_nixpkgs(dir: &Path) -> PathBuf {
    let root = dir.join("nixpkgs");
    fs::create_dir_all(root.join("nixos/lib")).expect("mkdir");
    std::os::unix::fs::symlink(nixpkgs_lib(), root.join("lib")).expect("lib link");
    let tests = repo().join("nix/tests");
    fs::write(
        root.join("default.nix"),
        format!(
            "{{ system ? \"x86_64-linux\" }}: import {}/pkgs.nix {{ lib = import ./lib; }} // {{ stdenv.hostPlatform.system = system; }}\n",
            tests.display()
        ),
    )
    .expect("default.nix");
    fs::write(
        root.join("nixos/lib/eval-config.nix"),
        format!(
            "{{ system, modules }}: import {}/eval.nix {{ nixpkgsLib = ../../lib; inherit modules; }}\n",
            tests.display()
        ),
    )
    .expect("eval-config.nix");
    root
}

fn eval_expr(expr: &str) -> String {
    let out = run(nix_instantiate()
        .args(["--eval", "--strict", "--json", "--readonly-mode", "--expr"])
        .arg(expr));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{expr}:\n{stderr}");
    stdout.trim().to_owned()
}

#[test]
fn default_nix_and_flake_give_packages_module_and_mysystem() {
    let dir = scratch_dir("nix-module-outputs");
    let fake = fake_nixpkgs(&dir);
    let top = repo();
    let summary = |outputs: &str| {
        format!(
            "let o = {outputs}; in [ (builtins.attrNames o.packages) \
             (builtins.attrNames o.packages.aarch64-linux) \
             o.packages.x86_64-linux.init.name \
             o.nixosConfigurations.mysystem.config.users.users.root.shell \
             o.nixosConfigurations.mysystem.config.wsl.defaultUser \
             (builtins.isFunction (import o.nixosModules.default)) ]"
        )
    };
    let expected = format!(
        r#"[["aarch64-linux","x86_64-linux"],["init","installer","packer"],"init-{}","{}","nixos",true]"#,
        env!("CARGO_PKG_VERSION"),
        paths::INIT
    );

    let classic = summary(&format!(
        "import {}/default.nix {{ nixpkgs = {}; }}",
        top.display(),
        fake.display()
    ));
    assert_eq!(eval_expr(&classic), expected, "default.nix");

    // flake.nix's outputs function, called the way `nix build` calls it
    let flake = summary(&format!(
        "let fake = {fake}; \
             nixpkgs = {{ outPath = fake; lib = import (fake + \"/lib\") // \
               {{ nixosSystem = import (fake + \"/nixos/lib/eval-config.nix\"); }}; }}; \
             self = (import {top}/flake.nix).outputs {{ inherit self nixpkgs; }}; \
         in self",
        fake = fake.display(),
        top = top.display()
    ));
    assert_eq!(eval_expr(&flake), expected, "flake.nix");
}

/// The text of a JSON string (what `nix-instantiate --json` prints for a Nix string).
fn json_string(json: &str) -> String {
    let inner = json
        .trim()
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or_else(|| panic!("not a JSON string: {json}"));
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = u32::from_str_radix(&hex, 16).expect("\\u escape");
                out.push(char::from_u32(code).expect("code point"));
            }
            Some(other) => out.push(other),
            None => panic!("dangling escape in {json}"),
        }
    }
    out
}

fn rendered(name: &str) -> String {
    let out = eval_checks(&format!("texts.{name}"), "{ }");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    json_string(&stdout)
}

// The module writes init.conf and wsl.conf as text; init's own parser and the simulator's model
// of WSL's must read every line of them as meant.
#[test]
fn rendered_init_conf_and_wsl_conf_read_back_with_the_toolkits_parsers() {
    use wsl_common::init_config::InitConfig;
    use wsl_sim::sim::wsl_conf::WslConf;
    for mode in ["wrapper", "native"] {
        let (config, errors) = InitConfig::parse(&rendered(&format!("{mode}InitConf")));
        assert!(
            errors.is_empty(),
            "{mode}: init.conf lines init rejects: {errors:?}"
        );
        assert_eq!(config.user, "nixos");
        assert_eq!(config.shell, "/run/current-system/sw/bin/bash");
        assert_eq!(
            config.systemd,
            ["/run/current-system/systemd/lib/systemd/systemd"]
        );
        assert_eq!(config.activate, "/nix/var/nix/profiles/system/activate");
        assert_eq!(config.activated, "/run/current-system");
        assert_eq!(config.boot_timeout_secs, 30);
        // native: the user's shell is init, which execs this one (user-shell mode)
        let user_shell = if mode == "native" {
            "/run/current-system/sw/bin/bash"
        } else {
            ""
        };
        assert_eq!(config.user_shell, user_shell, "{mode}");

        let wsl = WslConf::parse(&rendered(&format!("{mode}WslConf")));
        let default_user = if mode == "native" { "nixos" } else { "root" };
        assert_eq!(wsl.default_user.as_deref(), Some(default_user), "{mode}");
        assert_eq!(wsl.systemd, mode == "native", "{mode}");
    }
}

#[test]
fn nixpkgs_lib_names_what_is_missing() {
    let dir = scratch_dir("nix-module-no-lib");
    let script = repo().join("scripts/lib/nixpkgs-lib");

    let out = run(Command::new(&script).env("NIXPKGS", &dir));
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("has no lib/default.nix"), "{stderr}");

    let missing = dir.join("no-such.tar.gz");
    let out = run(Command::new(&script)
        .env_remove("NIXPKGS")
        .env("NIXPKGS_LIB_TARBALL", &missing)
        .env("WSL_TOOLKIT_CACHE", dir.join("cache")));
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("set NIXPKGS"), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(!dir.join("cache").exists(), "a cache was made for nothing");

    // $NIXPKGS wins: a checkout's lib is used as it is
    fs::create_dir_all(dir.join("lib")).expect("mkdir");
    fs::write(dir.join("lib/default.nix"), "{ }").expect("write");
    let out = run(Command::new(&script).env("NIXPKGS", &dir));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), dir.join("lib").display().to_string());
}
