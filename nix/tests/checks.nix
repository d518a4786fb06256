# What tests/tests/nix_module.rs checks in the evaluated module, one attribute per topic; each
# is a list of failures ("what: expected X, got Y"), empty when all is well.
#   nix-instantiate --eval --strict --json nix/tests/checks.nix --arg nixpkgsLib LIB -A TOPIC
{
  nixpkgsLib,
  # common/src/units.rs's names, handed over by the Rust test
  hostileUnits ? [ ],
  # a module to evaluate with wsl.enable for `probe` (bad values must be refused)
  extra ? { },
}:
let
  lib = import nixpkgsLib;
  inherit (lib)
    attrNames
    filter
    filterAttrs
    hasInfix
    optional
    sort
    ;
  paths = import ../paths.nix;
  eval = modules: (import ./eval.nix { inherit nixpkgsLib modules; }).config;
  spec = config: import ../spec.nix { inherit config lib; };
  on = {
    wsl.enable = true;
    system.stateVersion = "25.05";
  };
  with' = extra: eval [ on extra ];

  expect =
    what: actual: expected:
    optional (actual != expected) "${what}: expected ${builtins.toJSON expected}, got ${builtins.toJSON actual}";
  expectHas =
    what: text: part:
    optional (!hasInfix part text) "${what}: ${builtins.toJSON part} is not in ${builtins.toJSON text}";
  expectHasNot =
    what: text: part:
    optional (hasInfix part text) "${what}: ${builtins.toJSON part} should not be in ${builtins.toJSON text}";

  c = eval [ on ];
  s = spec c;
  native = with' { wsl.systemd = "native"; };
  activation = config: config.system.activationScripts.nixos-wsl.text;
  activationLinksOf = config: attrNames config.wsl.activationLinks;
  etcText = config: name: config.environment.etc.${name}.text;

  wslConfWrapper = ''
    # Written by NixOS (the nixos-wsl module, option wsl.wslConf): edit the configuration instead.
    [automount]
    options=metadata,uid=1000,gid=100
    [boot]
    systemd=false
    [network]
    generateHosts=true
    generateResolvConf=true
    [user]
    default=root
  '';
  initConf = user: timeout: ''
    # Written by NixOS (the nixos-wsl module, options wsl.*): edit the configuration instead.
    # Who WSL's shells run as once systemd is up (WSL itself must start root).
    user = ${user}
    # Root's real shell (root's shell in /etc/passwd is init itself).
    shell = /run/current-system/sw/bin/bash
    # systemd binaries to try; the first that exists wins.
    systemd = /run/current-system/systemd/lib/systemd/systemd
    # Run before systemd starts unless `activated` exists; empty disables.
    activate = /nix/var/nix/profiles/system/activate
    activated = /run/current-system
    # Seconds to wait for systemd's READY=1 before the shell starts anyway.
    boot-timeout = ${toString timeout}
  '';
in
{
  rootShell =
    expect "root's shell" c.users.users.root.shell paths.init
    ++ expect "root's shell in the spec" s.users.root.shell paths.init
    ++ expect "root's extra groups (WSL's initgroups)" s.users.root.extraGroups [ "root" ]
    ++ expect "root's uid" s.users.root.uid 0
    ++ expect "root group's members" s.groups.root.members [ "root" ]
    # without the module, NixOS's own default comes back (what the module must override)
    ++ expect "root's shell without wsl.enable" (eval [ { system.stateVersion = "25.05"; } ]).users.users.root.shell
      "/run/current-system/sw/bin/bash";

  defaultUser =
    let
      u = s.users.nixos;
      alice = with' { wsl.defaultUser = "alice"; };
      asked = with' { security.sudo.wheelNeedsPassword = true; };
    in
    expect "default user's uid" u.uid 1000
    ++ expect "default user is a normal user" u.isNormalUser true
    ++ expect "default user's groups" u.extraGroups [ "wheel" ]
    ++ expect "default user's group" u.group "users"
    ++ expect "default user's home" u.home "/home/nixos"
    ++ expect "default user lingers" u.linger true
    ++ expect "default user's shell" u.shell "/run/current-system/sw/bin/bash"
    ++ expect "wheel's members" s.groups.wheel.members [ "nixos" ]
    ++ expect "users in the spec" (attrNames s.users) [
      "messagebus"
      "nixos"
      "nobody"
      "root"
      "systemd-coredump"
      "systemd-network"
    ]
    ++ expect "nobody's shell" s.users.nobody.shell "/run/current-system/sw/bin/nologin"
    ++ expect "no lock-out check (nobody logs in with a password)" c.users.allowNoPasswordLogin true
    ++ expectHas "sudoers (passwordless by default)" s.etc.sudoers.text "%wheel\tALL=(ALL:ALL)\tNOPASSWD:SETENV: ALL"
    ++ expect "sudoers mode" s.etc.sudoers.mode "0440"
    ++ expectHasNot "sudoers with wheelNeedsPassword" (spec asked).etc.sudoers.text "NOPASSWD"
    ++ expect "users with defaultUser = alice" (attrNames (spec alice).users) [
      "alice"
      "messagebus"
      "nobody"
      "root"
      "systemd-coredump"
      "systemd-network"
    ]
    ++ expectHas "init.conf with defaultUser = alice" (etcText alice paths.initConfig) "user = alice\n"
    ++ expect "a changed uid reaches wsl.conf's drive owner"
      (hasInfix "uid=1001," (etcText (with' { users.users.nixos.uid = 1001; }) "wsl.conf"))
      true;

  etc =
    let
      noHosts = with' { wsl.wslConf.network.generateHosts = false; };
      conf = with' {
        wsl.wslConf.interop.appendWindowsPath = false;
        wsl.wslConf.network.hostname = "box";
      };
    in
    expect "enabled /etc entries" (attrNames s.etc) [
      paths.initConfig
      "sudoers"
      "systemd/user.conf"
      "wsl.conf"
    ]
    ++ expect "/etc/wsl.conf" s.etc."wsl.conf".text wslConfWrapper
    ++ expect "/etc/wsl.conf is a link into /etc/static" s.etc."wsl.conf".mode "symlink"
    ++ expect "/etc/${paths.initConfig}" s.etc.${paths.initConfig}.text (initConf "nixos" 30)
    ++ expect "initConf" s.initConf (initConf "nixos" 30)
    ++ expect "init.conf with bootTimeout = 90" (etcText (with' { wsl.bootTimeout = 90; }) paths.initConfig) (
      initConf "nixos" 90
    )
    ++ expect "/etc/hosts is left to WSL" c.environment.etc.hosts.enable false
    ++ expect "/etc/resolv.conf is left to WSL" c.environment.etc."resolv.conf".enable false
    ++ expect "/etc/hosts with generateHosts = false" noHosts.environment.etc.hosts.enable true
    ++ expectHas "wsl.conf keeps user settings" (etcText conf "wsl.conf") "[interop]\nappendWindowsPath=false\n"
    ++ expectHas "wsl.conf keeps user settings" (etcText conf "wsl.conf") "hostname=box\n";

  units =
    let
      disabled = s.disabledUnits;
      missing = filter (u: !(builtins.elem u disabled)) (import ../units.nix);
    in
    optional (hostileUnits == [ ]) "the test gave no hostileUnits (common/src/units.rs's names)"
    ++ expect "nix/units.nix (expected: common/src/units.rs's names)" (sort (a: b: a < b) (import ../units.nix)) (
      sort (a: b: a < b) hostileUnits
    )
    ++ expect "hostile units not disabled" missing [ ]
    ++ expect "dhcpcd" c.networking.dhcpcd.enable false
    ++ expect "resolvconf" c.networking.resolvconf.enable false
    ++ expect "firewall" c.networking.firewall.enable false
    ++ expect "timesyncd" c.services.timesyncd.enable false
    ++ expect "oomd" c.systemd.oomd.enable false
    ++ expect "console" c.console.enable false
    ++ expect "emergency mode" c.systemd.enableEmergencyMode false
    ++ expect "boot.isContainer" c.boot.isContainer true
    ++ expect "udev" (map (n: c.systemd.services.${n}.enable) [
      "systemd-udevd"
      "systemd-udev-trigger"
    ]) [
      false
      false
    ]
    ++ expect "the services of units.rs are disabled as services" (c.systemd.services."getty@tty1" or { enable = true; }).enable false
    ++ expect "the timer of units.rs is disabled as a timer" (c.systemd.timers.systemd-tmpfiles-clean or { enable = true; }).enable false
    ++ expect "the mounts of units.rs are disabled as units" (c.systemd.units."tmp.mount" or { enable = true; }).enable false
    ++ expect "features' units in the spec" (filter (u: builtins.elem u disabled) [
      "dhcpcd.service"
      "firewall.service"
      "systemd-timesyncd.service"
      "systemd-oomd.service"
      "emergency.service"
    ]) [
      "dhcpcd.service"
      "firewall.service"
      "systemd-timesyncd.service"
      "systemd-oomd.service"
      "emergency.service"
    ]
    # a user can turn a defaulted feature back on
    ++ expect "firewall back on" (with' { networking.firewall.enable = true; }).networking.firewall.enable true;

  modes =
    expectHas "wrapper: wsl.conf" (etcText c "wsl.conf") "[boot]\nsystemd=false\n"
    # WSL's generated wslg-session user unit runs mkdir and ln with the manager's PATH
    ++ expectHas "native: the user manager's PATH" (etcText native "systemd/user.conf") ''DefaultEnvironment="PATH=/run/wrappers/bin:/nix/var/nix/profiles/default/bin:/run/current-system/sw/bin"''
    ++ expectHasNot "wrapper: the user manager's own PATH" (etcText c "systemd/user.conf") "DefaultEnvironment"
    ++ expectHasNot "wrapper: no /sbin/init" (activation c) "/sbin/init"
    ++ expectHas "native: wsl.conf" (etcText native "wsl.conf") "[boot]\nsystemd=true\n"
    ++ expectHas "native: /sbin/init is init" (activation native) "ln -sfn ${paths.init} /sbin/init.nixos-wsl-tmp"
    ++ expectHas "native: /sbin/init renamed into place" (activation native) "mv -Tf /sbin/init.nixos-wsl-tmp /sbin/init"
    ++ expect "native: same root shell" native.users.users.root.shell paths.init
    # native: WSL starts the user, whose shell is init (user-shell mode); root's shell stays init
    ++ expect "native: the user's shell is init" native.users.users.nixos.shell paths.init
    ++ expect "wrapper: the user's shell is not init" c.users.users.nixos.shell "/run/current-system/sw/bin/bash"
    ++ expectHas "native: the user is WSL's default user" (etcText native "wsl.conf") "[user]\ndefault=nixos\n"
    ++ expectHas "wrapper: root is WSL's default user" (etcText c "wsl.conf") "[user]\ndefault=root\n"
    ++ expect "native: init.conf names the user's real shell" (etcText native paths.initConfig) (
      builtins.replaceStrings
        [
          "# Who WSL's shells run as once systemd is up (WSL itself must start root).\n"
          "shell = /run/current-system/sw/bin/bash\n"
        ]
        [
          "# The default user (WSL starts it: [user] default in /etc/wsl.conf).\n"
          "shell = /run/current-system/sw/bin/bash\n# The user's real shell (its shell in /etc/passwd is init, which gives commands /etc/set-environment).\nuser-shell = /run/current-system/sw/bin/bash\n"
        ]
        (etcText c paths.initConfig)
    )
    ++ expect "native: init is in /etc/shells" native.environment.shells [ paths.init ]
    ++ expect "wrapper: /etc/shells untouched" c.environment.shells [ ]
    ++ expectHasNot "wrapper: no user-shell" (etcText c paths.initConfig) "user-shell"
    ++ expectHas "native: wsl.userShell" (etcText (with' {
      wsl.systemd = "native";
      wsl.userShell = "/run/current-system/sw/bin/zsh";
    }) paths.initConfig) "user-shell = /run/current-system/sw/bin/zsh\n";

  activation =
    let
      a = activation c;
    in
    expectHas "init copied from the package" a "cp -f /nix/store/00000000000000000000000000000000-init-"
    ++ expectHas "init renamed into place" a "mv -Tf ${paths.init}.nixos-wsl-tmp ${paths.init}"
    ++ expectHas "/bin/mount" a "ln -sfn /nix/store/00000000000000000000000000000000-util-linux-2.40/bin/mount /bin/mount.nixos-wsl-tmp"
    ++ expectHas "/bin/login" a "ln -sfn /nix/store/00000000000000000000000000000000-shadow-4.16/bin/login /bin/login.nixos-wsl-tmp"
    ++ expectHas "/bin/wslpath" a "ln -sfn /init /bin/wslpath.nixos-wsl-tmp"
    # NixOS makes /bin/sh itself (binsh); the tarball gets it from wsl.binLinks
    ++ expectHasNot "/bin/sh left to NixOS" a "/bin/sh"
    ++ expectHas "/bin/true" a "ln -sfn /nix/store/00000000000000000000000000000000-coreutils-9.5/bin/true /bin/true.nixos-wsl-tmp"
    ++ expect "links of the tarball" (attrNames c.wsl.binLinks) [
      "login"
      "mount"
      "sh"
      "true"
      "wslpath"
    ]
    ++ expect "links of the activation" (activationLinksOf c) [
      "/bin/login"
      "/bin/mount"
      "/bin/true"
      "/bin/wslpath"
    ]
    # WSL's native boot runs systemctl and grep through /bin/sh with no PATH
    ++ expect "links of the activation, native" (activationLinksOf native) [
      "/bin/grep"
      "/bin/login"
      "/bin/mount"
      "/bin/systemctl"
      "/bin/true"
      "/bin/wslpath"
      "/sbin/init"
    ]
    ++ expect "native: /sbin/init is init" native.wsl.activationLinks."/sbin/init" paths.init
    ++ expect "the spec's activation links" (spec c).activationLinks c.wsl.activationLinks;

  windowsPath =
    expectHas "extraInit appends WSLPATH" c.environment.extraInit ''export PATH="$PATH:$WSLPATH"''
    ++ expect "extraInit without includePath" (with' { wsl.interop.includePath = false; }).environment.extraInit "";

  # system.build.*: what the builders are given (nothing is built)
  build =
    let
      b = c.system.build;
      prepare = b.tarball.args.extraCommands.text;
      nativePrepare = native.system.build.tarball.args.extraCommands.text;
      rootfs = "/nix/store/00000000000000000000000000000000-nixos-wsl-x86_64-linux/tarball/nixos-wsl-x86_64-linux.tar.gz";
    in
    expect "tarball builder" (baseNameOf (toString b.tarball.fn)) "make-system-tarball.nix"
    ++ expect "tarball name" b.tarball.args.fileName "nixos-wsl-x86_64-linux"
    ++ expect "tarball compression" b.tarball.args.compressionExtension ".gz"
    ++ expect "tarball without hard links (WSL's import refuses them)" b.tarball.args.extraArgs "--hard-dereference"
    ++ expect "tarball holds the system" (map (s: s.object.name) b.tarball.args.storeContents) [
      "nixos-system-stub"
      "nixos-wsl-prepare"
    ]
    ++ expectHas "Nix database loaded" prepare "nix-store --store \"$PWD\" --load-db < nix-path-registration"
    ++ expectHas "system profile set" prepare "nix-env --store \"$PWD\" -p nix/var/nix/profiles/system --set /nix/store/00000000000000000000000000000000-nixos-system-stub"
    ++ expectHas "init in the tarball" prepare "install -m 0755 /nix/store/00000000000000000000000000000000-init-"
    ++ expectHas "root's shell before activation" prepare "root:x:0:0:System administrator:/root:${paths.init}"
    ++ expectHas "/bin/sh in the tarball" prepare "ln -s /nix/store/00000000000000000000000000000000-bash-interactive-5.2/bin/sh bin/sh"
    ++ expectHas "wsl.conf in the tarball" prepare "cp /nix/store/00000000000000000000000000000000-etc-wsl.conf etc/wsl.conf"
    ++ expectHas "init.conf in the tarball" prepare "cp /nix/store/00000000000000000000000000000000-etc-init.conf etc/${paths.initConfig}"
    ++ expectHasNot "wrapper: no /sbin/init in the tarball" prepare "sbin/init"
    ++ expectHasNot "no fstab declared, none copied" prepare "etc/fstab"
    ++ expectHas "the declared fstab in the tarball (WSL's mount -a)"
      (with' { environment.etc.fstab.text = "# none\n"; }).system.build.tarball.args.extraCommands.text
      "cp /nix/store/00000000000000000000000000000000-etc-fstab etc/fstab"
    ++ expectHas "native: /sbin/init in the tarball" nativePrepare "ln -s ${paths.init} sbin/init"
    ++ expectHas "installer through packer" b.installer.script "packer --rootfs ${rootfs}"
    ++ expectHas "installer file" b.installer.script "--out $out/tarball/nixos-wsl-installer.tar.gz"
    ++ expectHas "installer's default user" b.installer.script "--default-user nixos"
    ++ expectHas ".wsl through packer" b.wsl.script "--out $out/NixOS.wsl --name NixOS"
    ++ expect "packer on the build machine" (map (p: lib.hasPrefix "packer-" p.name) b.installer.env.nativeBuildInputs) [ true ];

  # the module does nothing unless enabled
  disabled =
    let
      off = eval [ { system.stateVersion = "25.05"; } ];
    in
    expect "/etc entries without wsl.enable" (attrNames (filterAttrs (_: e: e.enable) off.environment.etc)) [
      "hosts"
      "sudoers"
      "systemd/user.conf"
    ]
    ++ expect "disabled units without wsl.enable" (spec off).disabledUnits [ ]
    # The stand-ins for what NixOS's own modules declare (stubs.nix), none of the module's.
    ++ expect "users without wsl.enable" (attrNames off.users.users) [
      "messagebus"
      "nobody"
      "root"
      "systemd-coredump"
      "systemd-network"
    ];

  # the rendered files, for the Rust side to read with init's and the simulator's parsers
  texts = {
    wrapperInitConf = etcText c paths.initConfig;
    wrapperWslConf = etcText c "wsl.conf";
    nativeInitConf = etcText native paths.initConfig;
    nativeWslConf = etcText native "wsl.conf";
  };

  # the whole spec of a system with `extra`: fails when the module refuses `extra`
  probe = spec (with' extra);

  # the paths the module uses, for the Rust side to compare with common/src/paths.rs
  inherit (paths) init initConfig;
}
