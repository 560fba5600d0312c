//! `TCP_NODELAY` on PostgreSQL connections.
//!
//! sqlx 0.9.0 no longer turns Nagle's algorithm off on its sockets
//! (launchbadge/sqlx#4335, fixed upstream by #4336, in no release yet). A
//! COPY sends its rows and then `CopyDone`, a small write that Nagle holds
//! back until the server acknowledges the rows, and servers delay their
//! acknowledgements by up to 40 ms: a 1,000-case CSV upload written in four
//! COPYs took 130–180 ms instead of ~50. Until a release carries the fix,
//! each new connection finds its own socket (by the client port the server
//! reports) and sets `TCP_NODELAY` on it. Linux only; elsewhere, and behind
//! address translation that changes the port, nothing is done.

use sqlx::PgConnection;

/// Turns Nagle's algorithm off on `connection`'s socket, where it can be
/// found. `server_port`: the port connected to.
pub(in crate::store) async fn disable_nagle(
    connection: &mut PgConnection,
    server_port: u16,
) -> Result<(), sqlx::Error> {
    let client_port: Option<i32> = sqlx::query_scalar("SELECT inet_client_port()")
        .fetch_one(&mut *connection)
        .await?;
    // NULL: a Unix-domain socket, which has no Nagle.
    let Some(client_port) = client_port.and_then(|p| u16::try_from(p).ok()) else {
        return Ok(());
    };
    if let Err(error) = set_nodelay(client_port, server_port) {
        tracing::debug!(%error, "TCP_NODELAY not set on a database connection");
    }
    Ok(())
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn set_nodelay(client_port: u16, server_port: u16) -> std::io::Result<()> {
    use std::os::fd::{BorrowedFd, RawFd};

    let Some(fd) = socket_fd(client_port, server_port) else {
        return Err(std::io::Error::other(
            "the connection's socket was not found",
        ));
    };
    // SAFETY: `fd` is the socket of the connection that `disable_nagle`
    // holds exclusively (its inode, among this process's descriptors): no one
    // closes it while it is borrowed here.
    let fd: BorrowedFd<'_> = unsafe { BorrowedFd::borrow_raw(fd as RawFd) };
    socket2::SockRef::from(&fd).set_tcp_nodelay(true)
}

#[cfg(not(target_os = "linux"))]
fn set_nodelay(_client_port: u16, _server_port: u16) -> std::io::Result<()> {
    Err(std::io::Error::other("only done on Linux"))
}

/// The descriptor of this process's TCP socket from `local` to `remote`
/// port: the inodes of such sockets from /proc/net/tcp{,6}, then the
/// descriptor among /proc/self/fd that names one.
#[cfg(target_os = "linux")]
fn socket_fd(local: u16, remote: u16) -> Option<i32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        inodes.extend(text.lines().skip(1).filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = |address: &str| {
                address
                    .rsplit_once(':')
                    .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
            };
            let inode = fields.get(9)?;
            (port(fields.get(1)?)? == local && port(fields.get(2)?)? == remote)
                .then(|| format!("socket:[{inode}]"))
        }));
    }
    if inodes.is_empty() {
        return None;
    }
    std::fs::read_dir("/proc/self/fd")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let target = std::fs::read_link(entry.path()).ok()?;
            inodes
                .iter()
                .any(|inode| target.as_os_str() == inode.as_str())
                .then(|| entry.file_name().to_str()?.parse().ok())?
        })
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    #[test]
    fn finds_the_descriptor_of_a_connected_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let server_port = listener.local_addr().expect("addr").port();
        let client = TcpStream::connect(("127.0.0.1", server_port)).expect("connect");
        let (mut accepted, _) = listener.accept().expect("accept");
        let client_port = client.local_addr().expect("addr").port();

        assert_eq!(
            super::socket_fd(client_port, server_port),
            Some(client.as_raw_fd())
        );
        assert!(!client.nodelay().expect("nodelay"));
        super::set_nodelay(client_port, server_port).expect("set");
        assert!(client.nodelay().expect("nodelay"));
        assert_eq!(super::socket_fd(client_port, server_port + 1), None);
        drop(client);
        let _ = accepted.read(&mut [0; 1]);
    }
}
