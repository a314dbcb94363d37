//! The requester chain: who asked, hop by hop, for the event an invocation handles.
//!
//! The kernel starts a chain where an event enters the bus (a client connection, or the kernel
//! itself) and the host appends the sending capsule every time a handler sends something on.
//! Nothing of it comes from the guest. Two decisions read it: whether a tool may be invoked
//! (every capsule on the chain must be entitled, so authority cannot be borrowed through a
//! deputy), and whom an effect is for (approvals and audit entries name the capsule that
//! started the chain, not only the tool that acts).

use std::fmt;
use std::sync::Arc;

use astrid_types::{CapsuleName, Manifest};

/// One link of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requester {
    /// The principal's own voice: a client connection (`client:<id>`) or the kernel. These
    /// authenticated as the principal, so they hold all of its authority.
    Principal(String),
    /// A capsule that handled an event of the chain and sent the next one, with the
    /// tool-call patterns its manifest named explicitly when it sent.
    Capsule {
        name: CapsuleName,
        tools: Arc<[String]>,
    },
}

/// The requesters that led to an event, oldest first. Cheap to clone (shared).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chain(Arc<Vec<Requester>>);

impl Chain {
    /// A chain started by a client connection or the kernel (`source` as the bus stamps it).
    pub fn from_principal(source: impl Into<String>) -> Chain {
        Chain(Arc::new(vec![Requester::Principal(source.into())]))
    }

    /// This chain with `capsule` appended: what a message the capsule sends carries.
    pub fn then(&self, capsule: &CapsuleName, manifest: &Manifest) -> Chain {
        let mut links = Vec::with_capacity(self.0.len() + 1);
        links.extend(self.0.iter().cloned());
        links.push(Requester::Capsule {
            name: capsule.clone(),
            tools: manifest.tool_patterns().map(str::to_string).collect(),
        });
        Chain(Arc::new(links))
    }

    pub fn links(&self) -> &[Requester] {
        &self.0
    }

    /// The first capsule on the chain: the one whose request set everything after it going.
    pub fn originator(&self) -> Option<&CapsuleName> {
        self.0.iter().find_map(|r| match r {
            Requester::Capsule { name, .. } => Some(name),
            Requester::Principal(_) => None,
        })
    }

    /// The first capsule on the chain that is not entitled to invoke the tool topic `topic`,
    /// if any. Principals are always entitled.
    pub fn refuses_tool(&self, topic: &str) -> Option<&CapsuleName> {
        self.0.iter().find_map(|r| match r {
            Requester::Capsule { name, tools }
                if !tools
                    .iter()
                    .any(|p| astrid_types::topic::pattern_matches(p, topic)) =>
            {
                Some(name)
            }
            _ => None,
        })
    }
}

impl fmt::Display for Chain {
    /// `client:3 > borrower > agent`; `(none)` for an event nobody asked for (a background
    /// loop's own message, a lifecycle hook).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(none)");
        }
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" > ")?;
            }
            match r {
                Requester::Principal(s) => f.write_str(s)?,
                Requester::Capsule { name, .. } => f.write_str(name.as_str())?,
            }
        }
        Ok(())
    }
}

/// Whom an effect is for: the acting capsule and, when another capsule's request started the
/// chain that led to it, that capsule. Approvals and audit entries name both
/// (`tool-shell for borrower`), so a human sees who really asked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Actor {
    pub capsule: CapsuleName,
    pub on_behalf_of: Option<CapsuleName>,
}

impl Actor {
    /// `capsule` handling an event with `chain`; a capsule acting on its own chain (a loop
    /// through itself) is not "on behalf of" itself.
    pub fn new(capsule: &CapsuleName, chain: &Chain) -> Actor {
        Actor {
            capsule: capsule.clone(),
            on_behalf_of: chain.originator().filter(|o| *o != capsule).cloned(),
        }
    }

    /// The capsule acting for nobody else.
    pub fn alone(capsule: &CapsuleName) -> Actor {
        Actor {
            capsule: capsule.clone(),
            on_behalf_of: None,
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.on_behalf_of {
            Some(o) => write!(f, "{} for {}", self.capsule, o),
            None => f.write_str(self.capsule.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(name: &str, publish: &[&str]) -> (CapsuleName, Manifest) {
        let mut text = format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\n\
             [[component]]\nfile = \"x.wasm\"\n[publish]\n"
        );
        for p in publish {
            text.push_str(&format!("\"{p}\" = {{}}\n"));
        }
        let m = Manifest::parse(&text, std::path::Path::new("Capsule.toml")).unwrap();
        (CapsuleName::new(name).unwrap(), m)
    }

    #[test]
    fn every_capsule_on_the_chain_must_be_entitled() {
        let (borrower, bm) = manifest("borrower", &["agent.v1.turn"]);
        let (agent, am) = manifest("agent", &["tool.v1.execute.*", "llm.v1.*"]);
        let shell = "tool.v1.execute.shell";

        let direct = Chain::from_principal("client:1").then(&agent, &am);
        assert_eq!(direct.refuses_tool(shell), None);
        assert_eq!(direct.to_string(), "client:1 > agent");

        let laundered = Chain::from_principal("client:1")
            .then(&borrower, &bm)
            .then(&agent, &am);
        assert_eq!(laundered.refuses_tool(shell), Some(&borrower));
        assert_eq!(laundered.to_string(), "client:1 > borrower > agent");
        // Not a tool topic question for anything else the agent sends.
        assert_eq!(laundered.originator(), Some(&borrower));
    }

    #[test]
    fn the_actor_names_the_originating_capsule() {
        let (borrower, bm) = manifest("borrower", &["agent.v1.turn"]);
        let (agent, am) = manifest("agent", &["tool.v1.execute.*"]);
        let shell = CapsuleName::new("tool-shell").unwrap();
        let chain = Chain::from_principal("client:1")
            .then(&borrower, &bm)
            .then(&agent, &am);
        assert_eq!(
            Actor::new(&shell, &chain).to_string(),
            "tool-shell for borrower"
        );
        let own = Chain::from_principal("client:1").then(&agent, &am);
        assert_eq!(Actor::new(&shell, &own).to_string(), "tool-shell for agent");
        assert_eq!(
            Actor::new(&shell, &Chain::from_principal("client:1")).to_string(),
            "tool-shell"
        );
        // A loop through itself acts for nobody else.
        assert_eq!(Actor::new(&agent, &own).to_string(), "agent");
        assert_eq!(Chain::default().to_string(), "(none)");
    }
}
