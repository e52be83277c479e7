//! Opening TCP connections, optionally from a chosen local address.
//!
//! Why: a connection to one broker address takes an ephemeral port of its
//! source address, and Linux hands out only
//! `/proc/sys/net/ipv4/ip_local_port_range` of them (32768–60999, ~28k, by
//! default) per source address when the socket is bound before `connect`.
//! Loopback answers on all of 127.0.0.0/8, so `loadgen conns --source-addrs
//! 127.0.0.1-127.0.0.8` spreads 50,000 idle connections over eight source
//! addresses, ~6k ports each, where one address would run out at ~28k. The
//! port is chosen at `connect` (`IP_BIND_ADDRESS_NO_PORT`), so it stays
//! usable for connections to other destinations.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

use tokio::net::{TcpSocket, TcpStream};

use crate::error::{Error, Result, io};

/// The most addresses one `--source-addrs` may name (a typo such as
/// `127.0.0.1-127.1.0.1` should not allocate millions).
pub const MAX_SOURCE_ADDRS: usize = 4096;

/// Local addresses to bind outgoing sockets to, used round-robin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceAddrs(Vec<IpAddr>);

/// Why a `--source-addrs` value was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SourceAddrsError {
    /// An item is not an IP address.
    #[error("not an IP address: {0:?}")]
    NotAnAddress(String),
    /// A range must be IPv4, low to high.
    #[error("a range must be IPv4 and go up: {0:?}")]
    BadRange(String),
    /// More than [`MAX_SOURCE_ADDRS`] addresses.
    #[error("more than {MAX_SOURCE_ADDRS} source addresses")]
    TooMany,
    /// Nothing given.
    #[error("no source address given")]
    Empty,
}

impl SourceAddrs {
    /// The address for connection number `i` (round-robin).
    pub fn pick(&self, i: u32) -> IpAddr {
        // Never empty: parsing refuses an empty list.
        self.0[i as usize % self.0.len()]
    }

    /// How many addresses there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false (parsing refuses an empty list); here for clippy's
    /// `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for SourceAddrs {
    type Err = SourceAddrsError;

    /// Comma-separated items, each an address (`127.0.0.1`, `::1`) or an
    /// inclusive IPv4 range (`127.0.0.1-127.0.0.8`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let parse = |a: &str| {
                a.trim()
                    .parse::<IpAddr>()
                    .map_err(|_| SourceAddrsError::NotAnAddress(a.trim().to_string()))
            };
            match item.split_once('-') {
                None => out.push(parse(item)?),
                Some((lo, hi)) => {
                    let (IpAddr::V4(lo), IpAddr::V4(hi)) = (parse(lo)?, parse(hi)?) else {
                        return Err(SourceAddrsError::BadRange(item.to_string()));
                    };
                    let (lo, hi) = (u32::from(lo), u32::from(hi));
                    if lo > hi {
                        return Err(SourceAddrsError::BadRange(item.to_string()));
                    }
                    if (hi - lo) as usize >= MAX_SOURCE_ADDRS {
                        return Err(SourceAddrsError::TooMany);
                    }
                    out.extend((lo..=hi).map(|a| IpAddr::V4(Ipv4Addr::from(a))));
                }
            }
            if out.len() > MAX_SOURCE_ADDRS {
                return Err(SourceAddrsError::TooMany);
            }
        }
        if out.is_empty() {
            return Err(SourceAddrsError::Empty);
        }
        Ok(SourceAddrs(out))
    }
}

impl fmt::Display for SourceAddrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0.first(), self.0.last()) {
            (Some(a), Some(b)) if self.0.len() > 1 => write!(f, "{a}..{b} ({})", self.0.len()),
            (Some(a), _) => write!(f, "{a}"),
            _ => Ok(()),
        }
    }
}

/// Connects to `addr` (host:port, resolved), from `source` when given (port
/// chosen by the kernel), and turns Nagle off (the clients batch their own
/// writes).
pub async fn dial(addr: &str, source: Option<IpAddr>) -> Result<TcpStream> {
    let stream = match source {
        None => TcpStream::connect(addr)
            .await
            .map_err(io(format!("connect to {addr}")))?,
        Some(src) => {
            let target = resolve(addr, src).await?;
            let socket = match target {
                SocketAddr::V4(_) => TcpSocket::new_v4(),
                SocketAddr::V6(_) => TcpSocket::new_v6(),
            }
            .map_err(io("open a socket"))?;
            defer_port_choice(&socket);
            socket
                .bind(SocketAddr::new(src, 0))
                .map_err(io(format!("bind to {src}")))?;
            socket
                .connect(target)
                .await
                .map_err(io(format!("connect to {addr} from {src}")))?
        }
    };
    stream.set_nodelay(true).map_err(io("set TCP_NODELAY"))?;
    Ok(stream)
}

/// Asks the kernel to pick the local port at `connect`, not at `bind`
/// (`IP_BIND_ADDRESS_NO_PORT`). Why: a port chosen by `bind(addr, 0)` is
/// reserved for that socket alone, and `connect` without `bind` (every other
/// client on the machine, loadgen's other scenarios) skips reserved ports,
/// so 50,000 bound connections would leave other programs no ephemeral port
/// until their TIME_WAIT ends; a port chosen at `connect` is shared by every
/// connection with a different (source, destination) pair. Best effort: if
/// the option is refused, `bind` reserves as before.
#[cfg(target_os = "linux")]
fn defer_port_choice(socket: &TcpSocket) {
    use nix::sys::socket::{setsockopt, sockopt::IpBindAddressNoPort};
    let _ = setsockopt(socket, IpBindAddressNoPort, &true);
}

#[cfg(not(target_os = "linux"))]
fn defer_port_choice(_socket: &TcpSocket) {}

/// The first address of `addr` in the family of `source`.
async fn resolve(addr: &str, source: IpAddr) -> Result<SocketAddr> {
    tokio::net::lookup_host(addr)
        .await
        .map_err(io(format!("resolve {addr}")))?
        .find(|a| a.is_ipv4() == source.is_ipv4())
        .ok_or_else(|| {
            Error::Options(format!(
                "{addr} has no address of the source address {source}'s family"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn a_range_lists_every_address_and_picks_round_robin() {
        let a: SourceAddrs = "127.0.0.1-127.0.0.3".parse().expect("parses");
        assert_eq!(a.len(), 3);
        assert_eq!(
            (0..4).map(|i| a.pick(i)).collect::<Vec<_>>(),
            vec![
                v4("127.0.0.1"),
                v4("127.0.0.2"),
                v4("127.0.0.3"),
                v4("127.0.0.1")
            ]
        );
        assert_eq!(a.to_string(), "127.0.0.1..127.0.0.3 (3)");
    }

    #[test]
    fn ranges_cross_octets_and_mix_with_single_addresses() {
        let a: SourceAddrs = "127.0.0.255-127.0.1.0, ::1".parse().expect("parses");
        assert_eq!(
            a.0,
            vec![
                v4("127.0.0.255"),
                v4("127.0.1.0"),
                "::1".parse().expect("v6")
            ]
        );
        let one: SourceAddrs = "127.0.0.9".parse().expect("parses");
        assert_eq!(one.to_string(), "127.0.0.9");
    }

    #[test]
    fn bad_values_are_refused() {
        assert_eq!(
            "127.0.0.3-127.0.0.1".parse::<SourceAddrs>(),
            Err(SourceAddrsError::BadRange("127.0.0.3-127.0.0.1".into()))
        );
        assert_eq!(
            "::1-::2".parse::<SourceAddrs>(),
            Err(SourceAddrsError::BadRange("::1-::2".into()))
        );
        assert_eq!(
            "localhost".parse::<SourceAddrs>(),
            Err(SourceAddrsError::NotAnAddress("localhost".into()))
        );
        assert_eq!(
            "127.0.0.0-127.1.0.0".parse::<SourceAddrs>(),
            Err(SourceAddrsError::TooMany)
        );
        assert_eq!(" , ".parse::<SourceAddrs>(), Err(SourceAddrsError::Empty));
    }

    #[tokio::test]
    async fn dial_binds_the_chosen_source_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let addr = listener.local_addr().expect("local addr").to_string();
        let stream = dial(&addr, Some(v4("127.0.0.2"))).await.expect("dial");
        let (_, peer) = listener.accept().await.expect("accept");
        assert_eq!(peer.ip(), v4("127.0.0.2"));
        assert_eq!(stream.local_addr().expect("local").ip(), v4("127.0.0.2"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_port_is_left_to_connect() {
        use nix::sys::socket::{getsockopt, sockopt::IpBindAddressNoPort};
        let socket = TcpSocket::new_v4().expect("socket");
        defer_port_choice(&socket);
        assert!(getsockopt(&socket, IpBindAddressNoPort).expect("getsockopt"));
        socket
            .bind("127.0.0.3:0".parse().expect("addr"))
            .expect("bind");
        // Bound to the address, but no port reserved yet.
        assert_eq!(socket.local_addr().expect("local").port(), 0);
    }
}
