# spec.json of the example system (../example.nix) plus any extra modules: see scripts/lib/nixos-spec.
{
  nixpkgsLib,
  extraModules ? [ ],
}:
let
  evaluated = import ./eval.nix {
    inherit nixpkgsLib;
    modules = [ ../example.nix ] ++ extraModules;
  };
in
import ../spec.nix { inherit (evaluated) config lib; }
