//! Starting the processes of a job on this machine without racing for ports: the
//! launcher binds one listening socket per process on 127.0.0.1 *before* any process
//! starts, and each process inherits its socket (`WEIR_LISTEN_FD`) instead of binding the
//! port itself. No port is ever picked by binding and releasing it, so another program
//! cannot take it in between.

use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::process::Command;

use crate::cluster::peer_network::LISTEN_FD_ENV;

/// The file descriptor a process finds its inherited listener at.
const INHERITED_FD: i32 = 3;

/// Bound listeners for the processes of one local job, and their addresses.
///
/// ```no_run
/// use std::process::Command;
/// use weir_core::LocalCluster;
/// let cluster = LocalCluster::bind(2).unwrap();
/// std::fs::write("hosts.txt", cluster.hostfile()).unwrap();
/// let children: Vec<_> = (0..2)
///     .map(|p| {
///         let mut command = Command::new("./my_job");
///         command.args(["-w", "2", "-n", "2", "-p", &p.to_string(), "-h", "hosts.txt"]);
///         cluster.pass_listener(p, &mut command);
///         command.spawn().unwrap()
///     })
///     .collect();
/// drop(cluster); // the children hold their listeners now
/// # drop(children);
/// ```
#[derive(Debug)]
pub struct LocalCluster {
    listeners: Vec<TcpListener>,
    addresses: Vec<String>,
}

impl LocalCluster {
    /// Binds a listener on a free port of 127.0.0.1 for each of `processes` processes.
    pub fn bind(processes: usize) -> std::io::Result<Self> {
        let listeners = (0..processes)
            .map(|_| TcpListener::bind("127.0.0.1:0"))
            .collect::<std::io::Result<Vec<_>>>()?;
        let addresses = listeners
            .iter()
            .map(|l| l.local_addr().map(|a| a.to_string()))
            .collect::<std::io::Result<_>>()?;
        Ok(LocalCluster {
            listeners,
            addresses,
        })
    }

    /// `127.0.0.1:PORT` of every process, in process order.
    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// The addresses as a hostfile (`-h`): one per line.
    pub fn hostfile(&self) -> String {
        self.addresses.join("\n") + "\n"
    }

    /// Arranges for `command` (process `process` of the job) to inherit its listener: the
    /// socket becomes its file descriptor 3 and `WEIR_LISTEN_FD=3` is set.
    ///
    /// # Panics
    /// If `process` is not one of the cluster's processes.
    pub fn pass_listener(&self, process: usize, command: &mut Command) {
        use std::os::unix::process::CommandExt;
        let fd = self.listeners[process].as_raw_fd();
        command.env(LISTEN_FD_ENV, INHERITED_FD.to_string());
        // SAFETY: between fork and exec only async-signal-safe calls (dup2, fcntl) run.
        // dup2 gives the child descriptor 3 without FD_CLOEXEC; if the socket already is
        // descriptor 3, its FD_CLOEXEC flag is cleared instead.
        unsafe {
            command.pre_exec(move || {
                let result = if fd == INHERITED_FD {
                    libc::fcntl(fd, libc::F_SETFD, 0)
                } else {
                    libc::dup2(fd, INHERITED_FD)
                };
                if result == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}
