//! Users, their permissions and vhosts: `add user|vhost`, `change password`,
//! `delete user|vhost`, `set permissions`, `clear permissions`.
//!
//! New passwords are an argument (as with rabbitmqctl) or read from standard input: the
//! global `--password` already names the password brokerctl logs in with.

use std::io::BufRead as _;

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use crate::client::{Client, Failure, segment};
use crate::done;
use crate::output::Format;

const PASSWORD_HELP: &str = "\
A password on the command line is visible to other users of the machine (ps, /proc) and is \
kept in shell history and CI logs; --password-stdin reads it from the first line of standard \
input instead, e.g. `printf '%s\\n' \"$PASS\" | brokerctl add user bob --password-stdin`.";

/// `add ...`.
#[derive(Debug, Subcommand)]
pub enum Add {
    /// Create a user (or replace an existing user's password and tags).
    #[command(
        long_about = "Create a user (or replace an existing user's password and tags).\n\n\
        A new user can log in but reaches no vhost until `set permissions` grants one.\n\n\
        Examples:\n  brokerctl add user bob 's3cret' --tags monitoring\n  \
        printf '%s\\n' \"$PASS\" | brokerctl add user ci --password-stdin --tags administrator",
        after_help = PASSWORD_HELP
    )]
    User {
        /// User name.
        name: String,
        #[command(flatten)]
        password: NewPassword,
        /// Comma-separated tags: administrator (may change anything through the API),
        /// monitoring (may read the API), management; none when absent.
        #[arg(long, value_delimiter = ',', value_name = "TAG,...")]
        tags: Vec<String>,
    },
    /// Create a vhost (an isolated namespace of exchanges, queues and permissions).
    #[command(
        long_about = "Create a vhost (an isolated namespace of exchanges, queues and \
        permissions).\n\nNobody may use it until `set permissions --vhost NAME` grants access.\n\n\
        Example:\n  brokerctl add vhost staging && brokerctl set permissions bob --vhost staging \
        --configure '.*' --write '.*' --read '.*'"
    )]
    Vhost {
        /// Vhost name.
        name: String,
        /// Free-text description shown by `list vhosts`.
        #[arg(long)]
        description: Option<String>,
    },
}

/// `change ...`.
#[derive(Debug, Subcommand)]
pub enum Change {
    /// Give a user a new password (their tags and permissions stay).
    #[command(
        long_about = "Give a user a new password (their tags and permissions stay).\n\n\
        Connections already open stay open; new logins need the new password.\n\n\
        Example:\n  printf '%s\\n' \"$NEW\" | brokerctl change password bob --password-stdin",
        after_help = PASSWORD_HELP
    )]
    Password {
        /// User name.
        name: String,
        #[command(flatten)]
        password: NewPassword,
    },
}

/// `set ...`.
#[derive(Debug, Subcommand)]
pub enum Set {
    /// Grant a user access to a vhost (--vhost, default /) with configure/write/read
    /// regular expressions.
    #[command(
        long_about = "Grant a user access to a vhost (--vhost, default /) with \
        configure/write/read regular expressions (replacing any earlier grant there).\n\n\
        configure: declare and delete the matching queues and exchanges; write: publish to the \
        matching exchanges and bind to the matching queues; read: consume from the matching \
        queues and bind from the matching exchanges. '.*' matches everything, '' nothing.\n\n\
        Example:\n  brokerctl set permissions bob --vhost / --configure '^bob-.*' --write '.*' \
        --read '.*'"
    )]
    Permissions {
        /// User name.
        #[arg(id = "target_user", value_name = "USER")]
        user: String,
        /// Regex of the queue and exchange names the user may declare and delete.
        #[arg(long, value_name = "REGEX")]
        configure: String,
        /// Regex of the exchanges the user may publish to (and queues bound to).
        #[arg(long, value_name = "REGEX")]
        write: String,
        /// Regex of the queues the user may consume from (and exchanges bound from).
        #[arg(long, value_name = "REGEX")]
        read: String,
    },
}

/// `clear ...`.
#[derive(Debug, Subcommand)]
pub enum Clear {
    /// Take away a user's access to a vhost (--vhost, default /; open connections lose it
    /// too).
    Permissions {
        /// User name.
        #[arg(id = "target_user", value_name = "USER")]
        user: String,
    },
}

/// Where a new password comes from: the argument, or standard input.
#[derive(Debug, Args)]
pub struct NewPassword {
    /// The new password (see below for why --password-stdin is safer).
    // Its own id: `password` is the global login option's.
    #[arg(
        id = "new_password",
        value_name = "PASSWORD",
        conflicts_with = "password_stdin"
    )]
    password: Option<String>,
    /// Read the new password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
}

impl NewPassword {
    fn read(self) -> Result<String, Failure> {
        let password = match self.password {
            Some(p) => p,
            None if !self.password_stdin => {
                return Err(Failure::Usage(
                    "give the new password as an argument or with --password-stdin".to_string(),
                ));
            }
            None => {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .map_err(|e| Failure::Usage(format!("cannot read standard input: {e}")))?;
                line.trim_end_matches(['\r', '\n']).to_string()
            }
        };
        if password.is_empty() {
            return Err(Failure::Usage("the new password is empty".to_string()));
        }
        Ok(password)
    }
}

/// `add user` / `add vhost`.
pub fn add(client: &Client, format: Format, add: Add) -> Result<(), Failure> {
    match add {
        Add::User {
            name,
            password,
            tags,
        } => {
            let body = json!({ "password": password.read()?, "tags": tags.join(",") });
            let created = client.put(&format!("/api/users/{}", segment(&name)), &body)?;
            let what = if created {
                "user added"
            } else {
                "user updated"
            };
            done(format, what, &name);
        }
        Add::Vhost { name, description } => {
            let mut body = Map::new();
            if let Some(d) = description {
                body.insert("description".into(), Value::String(d));
            }
            let created = client.put(
                &format!("/api/vhosts/{}", segment(&name)),
                &Value::Object(body),
            )?;
            let what = if created {
                "vhost added"
            } else {
                "vhost already exists"
            };
            done(format, what, &name);
        }
    }
    Ok(())
}

/// `change password`: a PUT with only the password keeps the user's tags.
pub fn change(client: &Client, format: Format, change: Change) -> Result<(), Failure> {
    let Change::Password { name, password } = change;
    let path = format!("/api/users/{}", segment(&name));
    // The PUT would create a missing user (one without tags); changing a password must not.
    client.get(&path)?;
    client.put(&path, &json!({ "password": password.read()? }))?;
    done(format, "password changed", &name);
    Ok(())
}

/// `delete user`.
pub fn delete_user(client: &Client, format: Format, name: &str) -> Result<(), Failure> {
    client.delete(&format!("/api/users/{}", segment(name)), None)?;
    done(format, "user deleted", name);
    Ok(())
}

/// `delete vhost`.
pub fn delete_vhost(client: &Client, format: Format, name: &str) -> Result<(), Failure> {
    client.delete(&format!("/api/vhosts/{}", segment(name)), None)?;
    done(format, "vhost deleted", name);
    Ok(())
}

/// `set permissions`.
pub fn set(client: &Client, vhost: &str, format: Format, set: Set) -> Result<(), Failure> {
    let Set::Permissions {
        user,
        configure,
        write,
        read,
    } = set;
    let body = json!({ "configure": configure, "write": write, "read": read });
    client.put(
        &format!("/api/permissions/{}/{}", segment(vhost), segment(&user)),
        &body,
    )?;
    done(
        format,
        "permissions set",
        &format!("{user} in vhost {vhost}"),
    );
    Ok(())
}

/// `clear permissions`.
pub fn clear(client: &Client, vhost: &str, format: Format, clear: Clear) -> Result<(), Failure> {
    let Clear::Permissions { user } = clear;
    client.delete(
        &format!("/api/permissions/{}/{}", segment(vhost), segment(&user)),
        None,
    )?;
    done(
        format,
        "permissions cleared",
        &format!("{user} in vhost {vhost}"),
    );
    Ok(())
}
