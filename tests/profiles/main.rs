//! Dataset profiles: golden trees of every shipped profile on path lists mimicking the real downloads, validation errors, and NIH scale.

mod common;
mod mura;
mod chestxray14;
mod drive;
mod kaggle_dr;
mod ddsm;
mod scr;
mod usc_sipi;
mod brats;
mod oasis;
mod abide;
mod visceral;
mod lidc;
mod cbis;
mod i2cvb;
mod adni;
mod mixed;
mod validation;
mod nih_scale;
