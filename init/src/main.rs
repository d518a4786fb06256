fn main() {
    println!("init: not yet implemented");
}
