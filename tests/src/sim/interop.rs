//! A stand-in for WSL's interop server: a Unix socket that answers the line `ping` with
//! `pong`, so a test can prove a shell or a service still reaches Windows.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::thread;

/// Binds `path` (replacing a stale socket) and answers on a background thread.
pub fn serve_in_background(path: &Path) -> std::io::Result<()> {
    let listener = bind(path)?;
    thread::spawn(move || accept_forever(&listener));
    Ok(())
}

/// Binds `path` and answers on this thread, forever.
pub fn serve(path: &Path) -> std::io::Result<()> {
    let listener = bind(path)?;
    accept_forever(&listener);
    Ok(())
}

fn bind(path: &Path) -> std::io::Result<UnixListener> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    // Every user's shell talks to it, as in WSL.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(listener)
}

fn accept_forever(listener: &UnixListener) {
    for stream in listener.incoming().flatten() {
        thread::spawn(move || answer(stream));
    }
}

fn answer(stream: UnixStream) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut line = String::new();
    if BufReader::new(stream).read_line(&mut line).is_err() {
        return;
    }
    let reply = if line.trim() == "ping" {
        "pong\n"
    } else {
        "unknown request\n"
    };
    let _ = writer.write_all(reply.as_bytes());
}
