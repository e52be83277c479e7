//! A publisher's memory of where its last message went.
//!
//! Routing walks the exchange's index, looks every destination up by name and dedupes the
//! result: for a fan-out to 50 queues that is most of what a publish costs. Publishers
//! mostly repeat their exchange and routing key, and the topology changes seldom, so a
//! publisher keeps its last route and reuses it for as long as the topology is the same
//! version ([`super::topology::Topology::version`]). A route that depended on the message's
//! headers (it passed a headers exchange) is never kept.

use std::sync::Arc;

use protocol_amqp::{FieldTable, ShortStr};

use super::queue::QueueHandle;
use super::topology::Topology;
use super::vhost::Vhost;

/// The queues one exchange and routing key reached in one topology version.
///
/// A queue deleted meanwhile is not sent to (its deletion changed the version); its handle is
/// let go at the publisher's next read or heartbeat (see [`RouteCache::forget_if_stale`]).
#[derive(Debug, Default)]
pub struct RouteCache {
    version: u64,
    exchange: ShortStr,
    routing_key: ShortStr,
    targets: Arc<[QueueHandle]>,
}

impl RouteCache {
    /// The queues of the remembered route, if it was for this exchange and routing key in
    /// topology `version`.
    pub fn lookup(
        &self,
        version: u64,
        exchange: &str,
        routing_key: &str,
    ) -> Option<&Arc<[QueueHandle]>> {
        (version != 0
            && self.version == version
            && self.routing_key.as_str() == routing_key
            && self.exchange.as_str() == exchange)
            .then_some(&self.targets)
    }

    /// The queues a message to `exchange` with `routing_key` reaches in `vhost` now (none
    /// without a vhost): the route `cache` holds if it is for them in the current topology
    /// version, else routed and remembered, unless it passed a headers exchange. On a miss
    /// `check` sees the topology first and may refuse the publish (a hit passed it already,
    /// in the same version).
    pub fn route<E>(
        cache: &mut Option<Box<RouteCache>>,
        vhost: Option<&Vhost>,
        exchange: &ShortStr,
        routing_key: &ShortStr,
        headers: Option<&FieldTable>,
        check: impl FnOnce(&Topology) -> Result<(), E>,
    ) -> Result<Arc<[QueueHandle]>, E> {
        let Some(vhost) = vhost else {
            check(&Topology::default())?;
            return Ok(Arc::from([]));
        };
        let version = vhost.topology_version();
        if let Some(targets) = cache
            .as_ref()
            .and_then(|c| c.lookup(version, exchange, routing_key))
        {
            return Ok(targets.clone());
        }
        let topology = vhost.topology();
        check(&topology)?;
        let mut targets = Vec::new();
        let by_headers = topology.route(exchange, routing_key, headers, &mut targets);
        let targets: Arc<[QueueHandle]> = targets.into();
        if !by_headers {
            cache.get_or_insert_with(Default::default).remember(
                topology.version,
                exchange,
                routing_key,
                targets.clone(),
            );
        }
        Ok(targets)
    }

    /// Drops `cache` if the topology is no longer at its version: a publisher gone quiet must
    /// not hold on to the queues its last route reached (through a direct queue, a gone
    /// subscriber's mailbox). Called now and then (a read, a heartbeat), not per message.
    pub fn forget_if_stale(cache: &mut Option<Box<RouteCache>>, version: u64) {
        if cache.as_ref().is_some_and(|c| c.version != version) {
            *cache = None;
        }
    }

    /// Remembers a route taken in topology `version`.
    pub fn remember(
        &mut self,
        version: u64,
        exchange: &ShortStr,
        routing_key: &ShortStr,
        targets: Arc<[QueueHandle]>,
    ) {
        self.version = version;
        if self.exchange != *exchange {
            self.exchange = exchange.clone();
        }
        self.routing_key = routing_key.clone();
        self.targets = targets;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::topology::Topology;
    use crate::core::vhost::{Vhost, VhostMeta};
    use crate::model::exchange::{Binding, Destination};

    #[test]
    fn every_change_and_every_vhost_has_its_own_version() {
        let a = Vhost::new("a", VhostMeta::default());
        let b = Vhost::new("b", VhostMeta::default());
        let first = a.topology_version();
        assert_ne!(first, 0);
        assert_ne!(first, b.topology_version());
        a.modify(|_| ());
        assert_ne!(a.topology_version(), first);
        assert_eq!(a.topology_version(), a.topology().version);
    }

    #[test]
    fn a_route_through_a_headers_exchange_depends_on_the_headers() {
        let mut t = Topology::with_builtin_exchanges();
        if let Some(x) = t.exchanges.get_mut("amq.topic") {
            let bound = Arc::make_mut(x).bind(Binding {
                destination: Destination::Exchange("amq.headers".into()),
                routing_key: "#".into(),
                arguments: Default::default(),
            });
            assert_eq!(bound, Ok(true));
        }
        let mut out = Vec::new();
        assert!(t.route("amq.topic", "a.b", None, &mut out));
        assert!(!t.route("amq.direct", "a.b", None, &mut out));
        assert!(!t.route("", "a.b", None, &mut out));
    }

    #[test]
    fn a_remembered_route_holds_for_its_version_exchange_and_key_only() {
        let mut cache = RouteCache::default();
        assert!(
            cache.lookup(0, "", "").is_none(),
            "version 0 is never a vhost's"
        );
        let (x, key) = (ShortStr::from_static("x"), ShortStr::from_static("k"));
        cache.remember(7, &x, &key, Arc::from([]));
        assert!(cache.lookup(7, "x", "k").is_some());
        assert!(cache.lookup(8, "x", "k").is_none());
        assert!(cache.lookup(7, "y", "k").is_none());
        assert!(cache.lookup(7, "x", "k2").is_none());
        let mut slot = Some(Box::new(cache));
        RouteCache::forget_if_stale(&mut slot, 7);
        assert!(slot.is_some());
        RouteCache::forget_if_stale(&mut slot, 8);
        assert!(slot.is_none());
    }
}
