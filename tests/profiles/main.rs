//! Dataset profiles: golden trees of every shipped profile on path lists mimicking the real downloads, validation errors, and NIH scale.

mod abide;
mod adni;
mod brats;
mod cbis;
mod chestxray14;
mod common;
mod ddsm;
mod drive;
mod i2cvb;
mod kaggle_dr;
mod lidc;
mod mixed;
mod mura;
mod nih_scale;
mod oasis;
mod scr;
mod usc_sipi;
mod validation;
mod visceral;
