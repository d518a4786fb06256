fn main() {
    println!("packer: not yet implemented");
}
