//! Sending open fds with a few bytes over a Unix socket (`SCM_RIGHTS`), both ways between
//! the supervisor and the launcher. Every received fd is close-on-exec.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

/// The most fds one message carries (the launcher's request: ctl, stdin, stdout, stderr, events).
pub(crate) const MAX_FDS: usize = 5;

/// Sends `bytes` with `fds` attached; the receiver gets its own copies of the fds.
pub(crate) fn send(socket: &impl AsRawFd, bytes: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
    let sent = sendmsg::<()>(socket.as_raw_fd(), &[IoSlice::new(bytes)], cmsgs, MsgFlags::MSG_NOSIGNAL, None)?;
    if sent != bytes.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short write on the launcher socket"));
    }
    Ok(())
}

/// Receives up to `buf.len()` bytes and the fds sent with them. `Ok((0, []))` is EOF.
pub(crate) fn recv(socket: &impl AsRawFd, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let mut iov = [IoSliceMut::new(buf)];
    let message = recvmsg::<()>(socket.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut fds = Vec::new();
    // Take ownership of whatever arrived before looking at anything else, so that no fd
    // leaks when the message turns out to be malformed.
    let cmsgs = message.cmsgs().map_err(|e| io::Error::other(format!("too many fds in one message: {e}")))?;
    for cmsg in cmsgs {
        if let ControlMessageOwned::ScmRights(received) = cmsg {
            // SAFETY: the kernel just installed these fds in this process for us alone.
            fds.extend(received.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
        }
    }
    Ok((message.bytes, fds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    #[test]
    fn fds_travel_with_the_bytes_and_arrive_close_on_exec() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut reader, writer) = UnixStream::pair().unwrap();
        send(&a, b"x", &[writer.as_raw_fd()]).unwrap();
        drop(writer);
        let mut buf = [0u8; 4];
        let (n, fds) = recv(&b, &mut buf).unwrap();
        assert_eq!((n, buf[0], fds.len()), (1, b'x', 1));
        let flags = nix::fcntl::fcntl(&fds[0], nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(flags & libc::FD_CLOEXEC, 0);
        let mut passed = UnixStream::from(fds.into_iter().next().unwrap());
        passed.write_all(b"hi").unwrap();
        drop(passed);
        let mut got = String::new();
        reader.read_to_string(&mut got).unwrap();
        assert_eq!(got, "hi");
        drop(a);
        assert_eq!(recv(&b, &mut buf).unwrap().0, 0);
    }
}
