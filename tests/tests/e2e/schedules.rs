//! Scheduled and conditional triggers: runs fire on time, never twice for one tick, also across a scheduler restart.
