//! One listening socket per task, all on the same address (SO_REUSEPORT).
//!
//! DESIGN.md section 11 measured both ways of sharing a port between task
//! threads: with one shared listener a burst of new connections mostly landed
//! on a single thread, while one SO_REUSEPORT socket per thread let the kernel
//! spread them evenly. Each task accepts only from its own socket, so a
//! request is served on the thread that accepted it, with no hop.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// Pending connections the kernel queues per socket.
const BACKLOG: i32 = 1024;

/// Binds `count` listeners to `addr`. With port 0 the first socket picks a free
/// port and the others join it.
pub fn bind(addr: SocketAddr, count: usize) -> io::Result<Vec<TcpListener>> {
    if addr.port() != 0 {
        ensure_port_free(addr)?;
    }
    let first = bind_one(addr)?;
    let addr = first.local_addr()?;
    let mut listeners = Vec::with_capacity(count);
    listeners.push(first);
    for _ in 1..count {
        listeners.push(bind_one(addr)?);
    }
    Ok(listeners)
}

fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// SO_REUSEPORT would let us join another process's group of sockets on the
/// same port and silently share its traffic. A plain bind fails if anyone
/// listens there, so try one first and report the port as taken.
fn ensure_port_free(addr: SocketAddr) -> io::Result<()> {
    let probe = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    probe.set_reuse_address(true)?;
    probe.bind(&addr.into())?;
    probe.listen(1)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_gives_every_task_the_same_free_port() {
        let listeners = bind("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        assert_ne!(ports[0], 0);
        assert!(ports.iter().all(|&p| p == ports[0]));
    }

    #[test]
    fn a_port_in_use_is_refused() {
        let taken = bind("127.0.0.1:0".parse().unwrap(), 1).unwrap();
        let addr = taken[0].local_addr().unwrap();
        let error = bind(addr, 2).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
    }
}
