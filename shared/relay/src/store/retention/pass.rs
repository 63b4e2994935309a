//! One retention pass as a sequence of small steps over the database, each short enough to
//! run under the relay's database lock without stalling logins: old rows of each table a batch
//! at a time, then old recordings (files and rows, each deletion noted in the audit log, the
//! notes then covered by a signed checkpoint), then the audit log (finish deleting what an earlier prune covers, choose the
//! checkpoint to prune up to, verify the entries up to it a batch at a time, write the signed
//! prune checkpoint, delete). [`run`] drives it on the running relay's blocking database
//! thread; tests call [`Pass::step`] directly.

use super::tables::{self, Table};
use super::Cuts;
use crate::context::{InternalError, Relay};
use crate::store::audit::prune;
use crate::store::audit::verify::{self, Bad, Walk};
use crate::store::db::{Database, DbError};
use crate::store::{audit, recordings};

/// Rows deleted or entries checked per step.
pub const BATCH: usize = 500;

/// What a pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Session records deleted.
    pub sessions: usize,
    /// Brute-force records deleted.
    pub failures: usize,
    /// Known addresses deleted.
    pub known_addresses: usize,
    /// Certificates deleted.
    pub certificates: usize,
    /// Recordings deleted (file and row).
    pub recordings: usize,
    /// Audit entries deleted.
    pub audit: usize,
    /// The prune checkpoint written, if one was.
    pub audit_prune: Option<i64>,
    /// Why the audit log was not pruned: its first bad entry (kept as evidence).
    pub audit_refused: Option<Bad>,
}

#[derive(Debug)]
enum Phase {
    Table(usize),
    Recordings,
    AuditDelete { planned: bool },
    AuditPlan,
    AuditCheck { walk: Box<Walk>, upto: i64 },
    Done,
}

/// A pass in progress.
#[derive(Debug)]
pub struct Pass {
    cuts: Cuts,
    now: u64,
    phase: Phase,
    report: Report,
}

impl Pass {
    /// A pass applying `cuts`, writing its prune checkpoint at `now`.
    pub fn new(cuts: Cuts, now: u64) -> Self {
        Self {
            cuts,
            now,
            phase: Phase::Table(0),
            report: Report::default(),
        }
    }

    /// What it did so far.
    pub fn report(&self) -> &Report {
        &self.report
    }

    fn table_cut(&self, table: Table) -> Option<u64> {
        match table {
            Table::Sessions => self.cuts.sessions,
            Table::Failures => Some(self.cuts.failures),
            Table::KnownAddresses => self.cuts.known_addresses,
            Table::Certificates => self.cuts.certificates,
        }
    }

    fn count(&mut self, table: Table, n: usize) {
        let r = &mut self.report;
        let slot = match table {
            Table::Sessions => &mut r.sessions,
            Table::Failures => &mut r.failures,
            Table::KnownAddresses => &mut r.known_addresses,
            Table::Certificates => &mut r.certificates,
        };
        *slot += n;
    }

    /// Runs one step; `false` once the pass is complete. The audit log is pruned only through
    /// a handle that signs checkpoints ([`Database::sign_audit_checkpoints`]).
    pub fn step(&mut self, db: &Database) -> Result<bool, DbError> {
        self.phase = match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Table(i) => match Table::ALL.get(i) {
                None => Phase::Recordings,
                Some(&table) => {
                    let n = match self.table_cut(table) {
                        Some(cut) => tables::prune_batch(db, table, cut, BATCH)?,
                        None => 0,
                    };
                    self.count(table, n);
                    Phase::Table(if n == BATCH { i } else { i + 1 })
                }
            },
            Phase::Recordings => self.recordings(db)?,
            Phase::AuditDelete { planned } => {
                let n = prune::delete_pruned(db, BATCH)?;
                self.report.audit += n;
                if n == BATCH {
                    Phase::AuditDelete { planned }
                } else if planned || self.cuts.audit.is_none() || db.audit_checkpointer().is_none()
                {
                    Phase::Done
                } else {
                    Phase::AuditPlan
                }
            }
            Phase::AuditPlan => self.plan(db)?,
            Phase::AuditCheck { mut walk, upto } => {
                match prune::check_batch(db, &mut walk, upto, BATCH)? {
                    Err(bad) => self.refuse(bad),
                    Ok(false) => Phase::AuditCheck { walk, upto },
                    Ok(true) => {
                        self.report.audit_prune = prune::write(db, &walk, self.now)?;
                        Phase::AuditDelete { planned: true }
                    }
                }
            }
            Phase::Done => Phase::Done,
        };
        Ok(!matches!(self.phase, Phase::Done))
    }

    /// A batch of old recordings; once none is left, a signed checkpoint over the notes of
    /// what was deleted.
    fn recordings(&mut self, db: &Database) -> Result<Phase, DbError> {
        let Some(cut) = self.cuts.recordings else {
            return Ok(Phase::AuditDelete { planned: false });
        };
        let n = recordings::prune_batch(db, &db.data_dir(), cut, BATCH, self.now)?;
        self.report.recordings += n;
        if n == BATCH {
            return Ok(Phase::Recordings);
        }
        if self.report.recordings > 0 {
            audit::checkpoint_now(db, self.now)?;
        }
        Ok(Phase::AuditDelete { planned: false })
    }

    fn plan(&mut self, db: &Database) -> Result<Phase, DbError> {
        let Some(cut) = self.cuts.audit else {
            return Ok(Phase::Done);
        };
        let Some(upto) = prune::prune_point(db, cut)? else {
            return Ok(Phase::Done);
        };
        let key = db.audit_checkpointer().map(|c| c.key.verifying_key());
        Ok(match verify::start(db.conn(), key.as_ref(), None)? {
            Ok(walk) => Phase::AuditCheck {
                walk: Box::new(walk),
                upto,
            },
            Err(bad) => self.refuse(bad),
        })
    }

    fn refuse(&mut self, bad: Bad) -> Phase {
        self.report.audit_refused = Some(bad);
        Phase::Done
    }

    /// Runs the remaining steps; returns the report.
    pub fn finish(mut self, db: &Database) -> Result<Report, DbError> {
        while self.step(db)? {}
        Ok(self.report)
    }
}

/// One pass over the running relay's database at `now`, under its policy and brute-force
/// settings, a step per turn of the database lock.
pub async fn run(relay: &Relay, now: u64) -> Result<Report, InternalError> {
    let cuts = Cuts::at(
        &relay.policy.retention,
        now,
        relay.config.longest_forget_secs(),
    );
    let mut pass = Pass::new(cuts, now);
    loop {
        let (back, more) = relay
            .with_db(move |db| {
                let more = pass.step(db)?;
                Ok((pass, more))
            })
            .await?;
        pass = back;
        if !more {
            return Ok(pass.report);
        }
    }
}
