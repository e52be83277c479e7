//! Permission checks of AMQP operations, as RabbitMQ makes them: configure for declare and
//! delete, write for publish and for the destination of a bind, read for consume, get and
//! purge and for the source of a bind. Refusals are 403 ACCESS_REFUSED channel errors.

use std::sync::Arc;

use super::connection::Conn;
use crate::core::access::{Access, Permission};
use crate::error::AmqpError;

/// What a resource is, for the refusal text.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Resource {
    Queue,
    Exchange,
}

/// The name permissions see for an exchange (the default exchange is `amq.default`).
pub(crate) fn exchange_resource(name: &str) -> &str {
    if name.is_empty() { "amq.default" } else { name }
}

/// The refusal RabbitMQ sends.
pub(crate) fn refused(kind: Resource, vhost: &str, name: &str, user: &str) -> AmqpError {
    let kind = match kind {
        Resource::Queue => "queue",
        Resource::Exchange => "exchange",
    };
    AmqpError::access_refused(format!(
        "access to {kind} '{name}' in vhost '{vhost}' refused for user '{user}'"
    ))
}

impl Conn {
    /// The user's permissions in the vhost, read again if users changed since last time.
    fn current_permission(&mut self) -> Option<Arc<Permission>> {
        let generation = self.core.access.generation();
        match &self.permission {
            Some((g, p)) if *g == generation => Some(p.clone()),
            _ => {
                let p = self.core.access.permission(&self.user, self.vhost_name())?;
                self.permission = Some((generation, p.clone()));
                Some(p)
            }
        }
    }

    /// Checks `access` to a resource; 403 ACCESS_REFUSED if the user lacks it.
    pub(crate) fn check_access(
        &mut self,
        access: Access,
        kind: Resource,
        name: &str,
    ) -> Result<(), AmqpError> {
        let resource = match kind {
            Resource::Exchange => exchange_resource(name),
            Resource::Queue => name,
        };
        if matches!(kind, Resource::Exchange) && name == crate::core::ops::MQTT_MEMBERSHIPS_EXCHANGE
        {
            // The broker's own bookkeeping of MQTT sessions: nobody's to configure or bind.
            return Err(refused(kind, self.vhost_name(), resource, &self.user));
        }
        match self.current_permission() {
            Some(p) if p.allows(access, resource) => Ok(()),
            _ => Err(refused(kind, self.vhost_name(), resource, &self.user)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_text_and_default_exchange_name() {
        let e = refused(Resource::Queue, "/", "q", "u");
        assert_eq!(e.code(), 403);
        assert_eq!(
            e.to_string(),
            "channel error 403: ACCESS_REFUSED - access to queue 'q' in vhost '/' refused for user 'u'"
        );
        assert_eq!(exchange_resource(""), "amq.default");
        assert_eq!(exchange_resource("x"), "x");
    }
}
