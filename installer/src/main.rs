fn main() {
    println!("installer: not yet implemented");
}
