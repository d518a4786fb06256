//! A bare NixOS system tarball's first boot (nixpkgs `nixos/lib/make-system-tarball.nix`): its
//! store is unpacked but the Nix database is empty and there is no system profile, so nothing
//! can find the system to activate and Nix knows none of the paths. NixOS's own images fix
//! that in stage 2 (`boot.postBootCommands` of `nixos/modules/virtualisation/lxc-container.nix`:
//! `nix-store --load-db < /nix-path-registration`, then `nix-env -p
//! /nix/var/nix/profiles/system --set`); init does the same before the activation, once.

use std::path::Path;

use wsl_common::init_config::InitConfig;

pub const REGISTRATION: &str = "/nix-path-registration";
pub const PROFILE: &str = "/nix/var/nix/profiles/system";
/// Written once the registration is loaded: it is loaded once, not at every start.
pub const MARKER: &str = "/nix/var/nix/db/nixos-wsl-registration-loaded";

/// What is on disk, gathered before deciding.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    pub registration: bool,
    pub marker: bool,
    pub profile: bool,
    /// The system (store path) to set the profile to, when one is known.
    pub system: Option<String>,
    /// `nix-store`, and `nix-env` beside it.
    pub nix_store: Option<String>,
    pub nix_env: Option<String>,
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Nothing,
    Run {
        nix_store: String,
        /// `nix-env` and the system, when the profile is missing.
        set_profile: Option<(String, String)>,
    },
    /// Needed but impossible: say why (the shell still starts; activation will be missing).
    Cannot(String),
}

pub fn decide(facts: &Facts) -> Decision {
    if !facts.registration || facts.marker {
        return Decision::Nothing;
    }
    let Some(nix_store) = facts.nix_store.clone() else {
        return Decision::Cannot(format!(
            "{REGISTRATION} is not loaded into the Nix database: no nix-store found"
        ));
    };
    let set_profile = if facts.profile {
        None
    } else {
        match (&facts.nix_env, &facts.system) {
            (Some(env), Some(system)) => Some((env.clone(), system.clone())),
            (None, _) => {
                return Decision::Cannot(format!("{PROFILE} is missing and no nix-env was found"))
            }
            (_, None) => {
                return Decision::Cannot(format!(
                    "{PROFILE} is missing and no NixOS system was found to set it to \
                     (set `system =` in {})",
                    wsl_common::paths::INIT_CONFIG
                ))
            }
        }
    };
    Decision::Run {
        nix_store,
        set_profile,
    }
}

/// The system: `system =` of the configuration, else the store path `/sbin/init` points into
/// (NixOS tarballs link `/sbin/init` to the system's `init`), else the only NixOS system in the
/// store.
fn system(config: &InitConfig) -> Option<String> {
    if !config.system.is_empty() {
        return Some(config.system.clone());
    }
    let is_system = |p: &Path| p.starts_with("/nix/store") && p.join("activate").exists();
    if let Ok(init) = std::fs::canonicalize("/sbin/init") {
        if let Some(dir) = init.parent().filter(|d| is_system(d)) {
            return Some(dir.to_string_lossy().into_owned());
        }
    }
    let mut systems = std::fs::read_dir("/nix/store")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains("-nixos-system-"))
                && is_system(p)
        });
    let only = systems.next()?;
    systems
        .next()
        .is_none()
        .then(|| only.to_string_lossy().into_owned())
}

/// Looks at the disk; cheap when there is no registration (one `stat`).
pub fn facts(config: &InitConfig) -> Facts {
    let exists = |p: &str| Path::new(p).exists();
    if !exists(REGISTRATION) {
        return Facts::default();
    }
    let system = system(config);
    let bins = system
        .iter()
        .map(|s| format!("{s}/sw/bin"))
        .chain(
            [
                "/nix/var/nix/profiles/default/bin",
                "/run/current-system/sw/bin",
                "/usr/local/bin",
                "/usr/bin",
                "/bin",
            ]
            .map(String::from),
        )
        .collect::<Vec<_>>();
    let find = |name: &str| {
        bins.iter()
            .map(|dir| format!("{dir}/{name}"))
            .find(|p| exists(p))
    };
    Facts {
        registration: true,
        marker: exists(MARKER),
        profile: std::fs::symlink_metadata(PROFILE).is_ok(),
        nix_store: find("nix-store"),
        nix_env: find("nix-env"),
        system,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bare() -> Facts {
        Facts {
            registration: true,
            marker: false,
            profile: false,
            system: Some("/nix/store/s-nixos-system-x".into()),
            nix_store: Some("/nix/store/n-nix/bin/nix-store".into()),
            nix_env: Some("/nix/store/n-nix/bin/nix-env".into()),
        }
    }

    #[test]
    fn a_bare_tarball_loads_the_database_and_sets_the_profile() {
        assert_eq!(
            decide(&bare()),
            Decision::Run {
                nix_store: "/nix/store/n-nix/bin/nix-store".into(),
                set_profile: Some((
                    "/nix/store/n-nix/bin/nix-env".into(),
                    "/nix/store/s-nixos-system-x".into()
                )),
            }
        );
    }

    #[test]
    fn once_only_and_never_without_a_registration() {
        assert_eq!(
            decide(&Facts {
                marker: true,
                ..bare()
            }),
            Decision::Nothing
        );
        assert_eq!(
            decide(&Facts {
                registration: false,
                ..bare()
            }),
            Decision::Nothing
        );
    }

    #[test]
    fn an_existing_profile_is_kept() {
        let Decision::Run { set_profile, .. } = decide(&Facts {
            profile: true,
            ..bare()
        }) else {
            panic!("load expected");
        };
        assert_eq!(set_profile, None);
    }

    #[test]
    fn what_is_missing_is_named() {
        let no_store = decide(&Facts {
            nix_store: None,
            ..bare()
        });
        assert!(matches!(&no_store, Decision::Cannot(w) if w.contains("nix-store")));
        let no_system = decide(&Facts {
            system: None,
            ..bare()
        });
        assert!(matches!(&no_system, Decision::Cannot(w) if w.contains("system =")));
        // With a profile, no system is needed.
        assert!(matches!(
            decide(&Facts {
                system: None,
                profile: true,
                ..bare()
            }),
            Decision::Run { .. }
        ));
    }
}
