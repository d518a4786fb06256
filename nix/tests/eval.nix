# Evaluates ../module.nix with nixpkgs' lib against ./stubs.nix and the given modules, and fails
# the way a NixOS build does when an assertion fails (nixos/modules/system/activation/top-level.nix).
#   nixpkgsLib: the path of nixpkgs' lib/ (a nixpkgs checkout's, or nix-community/nixpkgs.lib's)
{
  nixpkgsLib,
  modules ? [ ],
}:
let
  lib = import nixpkgsLib;
  evaluated = lib.evalModules {
    modules = [
      ./stubs.nix
      ../module.nix
      { _module.args.pkgs = import ./pkgs.nix { inherit lib; }; }
    ] ++ modules;
  };
  failed = map (a: a.message) (lib.filter (a: !a.assertion) evaluated.config.assertions);
in
if failed != [ ] then
  throw "\nFailed assertions:\n${lib.concatMapStrings (m: "- ${m}\n") failed}"
else
  evaluated // { inherit lib; }
