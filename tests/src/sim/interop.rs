//! A stand-in for WSL's interop servers: a Unix socket that answers the line `ping` with
//! `pong`, so a test can prove a shell or a service still reaches Windows. WSL's init beside a
//! native systemd also takes `login UID NAME` from sessions: it creates the user's login
//! session once per uid and waits for `user@UID.service` (config.cpp:2719-2805).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::sys;

/// Which of WSL's interop servers this is.
#[derive(Debug, Clone, Copy)]
pub enum Role {
    /// A session relay's `/run/WSL/<relay pid>_interop`.
    Relay,
    /// WSL's init as PID 1 (no systemd): `/run/WSL/1_interop`.
    Init,
    /// WSL's init beside a native systemd: also creates login sessions.
    InitBesideSystemd { timeout: Duration },
}

/// Binds `path` (replacing a stale socket) and answers on a background thread.
pub fn serve_in_background(path: &Path, role: Role) -> std::io::Result<()> {
    let listener = bind(path)?;
    thread::spawn(move || accept_forever(&listener, role));
    Ok(())
}

/// Binds `path` and answers on this thread, forever.
pub fn serve(path: &Path, role: Role) -> std::io::Result<()> {
    let listener = bind(path)?;
    accept_forever(&listener, role);
    Ok(())
}

fn bind(path: &Path) -> std::io::Result<UnixListener> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    // Every user's shell talks to it, as in WSL (0777).
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777))?;
    Ok(listener)
}

/// Login sessions made so far: uid -> the pty master that keeps `/bin/login` alive.
type Sessions = Arc<Mutex<HashMap<u32, OwnedFd>>>;

fn accept_forever(listener: &UnixListener, role: Role) {
    let sessions: Sessions = Arc::default();
    for stream in listener.incoming().flatten() {
        let sessions = Arc::clone(&sessions);
        thread::spawn(move || answer(stream, role, &sessions));
    }
}

fn answer(stream: UnixStream, role: Role, sessions: &Sessions) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut line = String::new();
    if BufReader::new(stream).read_line(&mut line).is_err() {
        return;
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    let reply = match (words.as_slice(), role) {
        (["ping"], _) => "pong\n".to_owned(),
        (["login", uid, name], Role::InitBesideSystemd { timeout }) => match uid.parse() {
            Ok(uid) if create_login_session(sessions, uid, name, timeout) => "ok\n".into(),
            _ => "failed\n".into(),
        },
        _ => "unknown request\n".into(),
    };
    let _ = writer.write_all(reply.as_bytes());
}

/// CreateLoginSession (config.cpp:2719-2805): once per uid, `forkpty` and
/// `execl("/bin/login", "/bin/login", "-f", NAME)`, then `systemctl is-active user@UID.service`
/// through `/bin/sh` with no PATH every 250 ms, up to `boot.initTimeout`; `failed` ends it.
fn create_login_session(sessions: &Sessions, uid: u32, name: &str, timeout: Duration) -> bool {
    let Ok(mut sessions) = sessions.lock() else {
        return false;
    };
    if sessions.contains_key(&uid) {
        return true;
    }
    let Ok((master, slave)) = sys::openpty(None) else {
        return false;
    };
    let mut login = Command::new("/bin/login");
    login
        .arg0("/bin/login")
        .args(["-f", name])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    sys::ChildSetup {
        groups: vec![0],
        gid: 0,
        uid: 0,
        new_session: true,
        controlling_tty: Some(slave.as_raw_fd()),
        stdio: [Some(slave.as_raw_fd()); 3],
        cwd: None,
    }
    .install(&mut login);
    // A missing /bin/login still counts as made (WSL ignores the child's exit) and the wait
    // below then runs into its timeout.
    if let Ok(mut child) = login.spawn() {
        thread::spawn(move || {
            let _ = child.wait();
        });
    }
    drop(slave);
    sessions.insert(uid, master);
    let deadline = Instant::now() + timeout;
    loop {
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("systemctl is-active user@{uid}.service"))
            .env_clear()
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output();
        match out {
            Ok(out) if out.status.success() => return true,
            Ok(out) if out.stdout == b"failed\n" => return false,
            _ => {}
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(250));
    }
}

/// A session's request to WSL's init at /run/WSL/1_interop: `true` when the login session is
/// up.
pub fn request_login(uid: u32, name: &str) -> bool {
    let Ok(mut stream) = UnixStream::connect("/run/WSL/1_interop") else {
        return false;
    };
    if stream
        .write_all(format!("login {uid} {name}\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut reply = String::new();
    let _ = BufReader::new(stream).read_line(&mut reply);
    reply.trim() == "ok"
}
