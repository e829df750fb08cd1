//! Build, then serve: makes the tree and the reader that `MedFs::from_parts` serves, from a
//! listed pool, the dataset profiles and the tree options. Everything that runs once before the
//! first request lives here (DICOM header scan, dataset organizing, raw view, names), so the core
//! in `fs.rs` imports only what serving needs and tests can build a core from a small tree. A
//! pool with identities gets its tree from the persisted one when it is still valid
//! (`treestore.rs`), and saves the tree it builds.

use crate::archive::path::normalize;
use crate::archive::{DataLoc, MemberKind};
use crate::collection::{Collection, Origin, collections};
use crate::dicomtree::{DicomFile, organize_dicom_with};
use crate::niftitree;
use crate::organize::{self, ContentSource, PoolFile};
use crate::pool::Pool;
use crate::profile::Profile;
use crate::reader::Reader;
use crate::tree::{self, NodeId, NodeKind, ROOT, Tree, TreeBuilder, TreeOptions};
use crate::treestore::{self, Missed};

/// The parts of a core over a listed pool: the tree (raw view of every archive, and a folder per
/// dataset that `profiles` recognize in the pool) and the reader its file nodes point into.
/// `MedFs::from_parts(tree, reader)` serves them.
///
/// When the pool's sources all have identities and indexes are on, the tree persisted for the
/// same sources, profiles, options and medfs version is loaded instead of built: no archive
/// byte is read, nothing is organized and no sidecar is rendered. Otherwise the tree is built
/// and saved; a persisted tree that was damaged is replaced with a warning, a stale one
/// silently.
pub fn parts(pool: Pool, opts: TreeOptions, profiles: &[Profile]) -> (Tree, Reader) {
    let digest = treestore::profiles_digest(profiles);
    assemble(pool, opts, &digest, || Ok(std::borrow::Cow::Borrowed(profiles))).expect("profiles are parsed already")
}

/// [`parts`] with profiles parsed only if the tree must be built: `digest` is
/// `profile::texts_digest` of the texts `load` parses. A warm mount parses no profile (compiling
/// their patterns is most of its work); a profile that fails to parse fails here.
pub fn parts_lazy(
    pool: Pool,
    opts: TreeOptions,
    digest: &[u8; 32],
    load: impl FnOnce() -> anyhow::Result<Vec<Profile>>,
) -> anyhow::Result<(Tree, Reader)> {
    assemble(pool, opts, digest, || load().map(std::borrow::Cow::Owned))
}

fn assemble<'p>(
    pool: Pool,
    opts: TreeOptions,
    digest: &[u8; 32],
    load: impl FnOnce() -> anyhow::Result<std::borrow::Cow<'p, [Profile]>>,
) -> anyhow::Result<(Tree, Reader)> {
    let reader = Reader::new(pool);
    let started = std::time::Instant::now();
    let Some(slot) = treestore::slot(reader.pool(), opts, digest) else {
        let tree = tree(&reader, opts, &load()?);
        return Ok((tree, reader));
    };
    let why = match treestore::load(&slot, reader.pool()) {
        Ok(tree) => {
            tracing::info!(
                "tree of {} names loaded from {} in {:.3} s: no archive read, no DICOM scan, no organizing, \
                 0 sidecars rendered",
                tree.len(),
                slot.path.display(),
                started.elapsed().as_secs_f64()
            );
            return Ok((tree, reader));
        }
        Err(Missed::Absent) | Err(Missed::Stale) => None,
        Err(Missed::Invalid(why)) => Some(why),
    };
    let mut tree = tree(&reader, opts, &load()?);
    match treestore::save(&slot, &mut tree) {
        Ok(()) => tracing::info!("tree saved to {}", slot.path.display()),
        Err(e) => tree.warnings.push(format!("tree not saved ({e}); the next mount organizes the datasets again")),
    }
    // Not saved with the tree: said once, at the mount that replaced it.
    if let Some(why) = why {
        tree.warnings.push(format!("persisted tree invalid ({why}); built again"));
    }
    Ok((tree, reader))
}

/// The tree shown over the reader's pool: DICOM headers scanned (when datasets are on),
/// datasets organized by `profiles`, the raw view of every archive, and one DICOM dataset per
/// collection (`collection.rs`: a source folder, or the archives given alone as parts of one)
/// for the DICOM files no profile claims.
pub fn tree(reader: &Reader, opts: TreeOptions, profiles: &[Profile]) -> Tree {
    let newest = reader.pool().archives.iter().map(|a| a.mtime).max().unwrap_or(0);
    let started = std::time::Instant::now();
    let mut builder = TreeBuilder::new(newest, opts);
    // DICOM headers first: profiles may place files by their tags.
    let headers = if opts.datasets { crate::dicomscan::scan(reader, &reader.pool().store) } else { Vec::new() };
    // Recognizing datasets reads label tables and renders sidecars; the raw view needs none
    // of that: build both at once.
    let (datasets, volumes) = std::thread::scope(|s| {
        let organizing = s.spawn(|| {
            if profiles.is_empty() && !opts.datasets {
                return (Vec::new(), Vec::new());
            }
            let files = pool_files(reader.pool(), &headers);
            let datasets = if profiles.is_empty() {
                Vec::new()
            } else {
                organize::organize_with(profiles, &files, reader, opts.derived)
            };
            // Volumes a profile may leave to the generic NIfTI dataset.
            let volumes: Vec<PoolFile> = if opts.datasets {
                files.into_iter().filter(|f| niftitree::is_volume(&f.path)).collect()
            } else {
                Vec::new()
            };
            (datasets, volumes)
        });
        builder.archives_dir(newest);
        for (i, archive) in reader.pool().archives.iter().enumerate() {
            builder.add_archive(i as u32, archive);
        }
        organizing.join().expect("organizing datasets panicked")
    });
    tracing::info!("raw view built and datasets organized in {:.3} s", started.elapsed().as_secs_f64());
    let mut claimed: std::collections::HashSet<(u32, u32)> = std::collections::HashSet::new();
    let any_generic = headers.iter().any(|h| !h.is_empty()) || !volumes.is_empty();
    let mut slugs: Vec<String> = Vec::new();
    for dataset in datasets {
        if any_generic {
            claimed.extend(dataset.files.iter().map(|f| f.source));
        }
        slugs.push(dataset.slug.clone());
        add_dataset(&mut builder, reader.pool(), dataset, newest);
    }
    // DICOM and NIfTI that no profile claims are organized generically, one dataset per
    // collection (a collection with both: `<name>` for its DICOM, `<name>-nifti` for its volumes),
    // with the derived files of the kinds made per DICOM series.
    let dicom_kinds: Vec<&'static dyn crate::derive::Kind> = if opts.derived {
        crate::derive::KINDS.iter().copied().filter(|k| k.dicom_series()).collect()
    } else {
        Vec::new()
    };
    let cols = if any_generic { collections(&origins(reader.pool())) } else { Vec::new() };
    let mut with_dicom = vec![false; cols.len()];
    for (ci, name, files) in unclaimed_dicom(reader.pool(), &cols, &headers, &claimed) {
        with_dicom[ci] = true;
        let slug = unique_slug(&generic_stem(&name, "dicom"), &mut slugs);
        add_dataset(
            &mut builder,
            reader.pool(),
            organize_dicom_with(&slug, &files, &dicom_kinds, Some(reader)),
            newest,
        );
    }
    if !volumes.is_empty() {
        let mut of_archive = vec![usize::MAX; reader.pool().archives.len()];
        for (ci, c) in cols.iter().enumerate() {
            for &ai in &c.members {
                of_archive[ai] = ci;
            }
        }
        let mut by_collection: Vec<Vec<PoolFile>> = vec![Vec::new(); cols.len()];
        for f in volumes.into_iter().filter(|f| !claimed.contains(&f.id)) {
            if let Some(v) = by_collection.get_mut(of_archive[f.id.0 as usize]) {
                v.push(f);
            }
        }
        for (ci, files) in by_collection.into_iter().enumerate().filter(|(_, f)| !f.is_empty()) {
            let name = &cols[ci].name;
            let stem = generic_stem(name, "nifti");
            let stem = if with_dicom[ci] { format!("{stem}-nifti") } else { stem };
            let slug = unique_slug(&stem, &mut slugs);
            if let Some(d) = niftitree::organize_nifti(&slug, name, &files, reader) {
                add_dataset(&mut builder, reader.pool(), d, newest);
            } else {
                slugs.pop();
            }
        }
    }
    tracing::info!("DICOM organized after {:.3} s", started.elapsed().as_secs_f64());
    let sidecars = builder.generated();
    let tree = builder.finish();
    tracing::info!(
        "tree of {} names built in {:.3} s: {sidecars} sidecars rendered",
        tree.len(),
        started.elapsed().as_secs_f64()
    );
    tree
}

/// Where each archive of the pool came from, for grouping generic collections.
fn origins(pool: &Pool) -> Vec<Origin<'_>> {
    pool.archives
        .iter()
        .map(|a| match pool.sources.get(a.source_index) {
            Some(s) => Origin { source: a.source_index, folder: s.folder, name: &s.name },
            // A pool built by hand: each archive is named alone.
            None => Origin {
                source: a.source_index,
                folder: false,
                name: a.mount_path.first().and_then(|n| std::str::from_utf8(n).ok()).unwrap_or("dicom"),
            },
        })
        .collect()
}

/// The DICOM files no profile claims, grouped by collection (`collection.rs`), each with the
/// collection's number and name. A file is claimed when a profile placed it, or placed another file of
/// its series (a profile's series is never split between it and a generic dataset). Annotation
/// XMLs carry only the series they name: not DICOM files to organize.
fn unclaimed_dicom(
    pool: &Pool,
    cols: &[Collection],
    headers: &[crate::dicomscan::Headers],
    claimed: &std::collections::HashSet<(u32, u32)>,
) -> Vec<(usize, String, Vec<DicomFile>)> {
    if headers.iter().all(|h| h.is_empty()) {
        return Vec::new();
    }
    let claimed_series: std::collections::HashSet<&str> =
        claimed.iter().filter_map(|(a, m)| headers.get(*a as usize)?.get(m)?.series_uid.as_deref()).collect();
    let mut out = Vec::new();
    for (ci, c) in cols.iter().enumerate() {
        let mut files = Vec::new();
        for &ai in &c.members {
            let Some(found) = headers.get(ai) else { continue };
            let a = &pool.archives[ai];
            let archive = String::from_utf8_lossy(&a.mount_path.join(&b'/')).into_owned();
            let mut members: Vec<(&u32, &std::sync::Arc<crate::dicom::DicomInfo>)> = found.iter().collect();
            members.sort_unstable_by_key(|(m, _)| **m);
            for (&m, info) in members {
                if info.is_series_reference()
                    || claimed.contains(&(ai as u32, m))
                    || info.series_uid.as_deref().is_some_and(|s| claimed_series.contains(s))
                {
                    continue;
                }
                let path = String::from_utf8_lossy(&a.members[m as usize].path).into_owned();
                // Loose files count their first path component as their archive, as for the
                // profiles (`pool_files`).
                let archive = match (a.loose_root(), path.split_once('/')) {
                    (Some(_), Some((first, _))) => first.to_string(),
                    _ => archive.clone(),
                };
                files.push(DicomFile {
                    id: (ai as u32, m),
                    archive,
                    path,
                    size: a.members[m as usize].size,
                    info: (**info).clone(),
                });
            }
        }
        if !files.is_empty() {
            out.push((ci, c.name.clone(), files));
        }
    }
    out
}

/// A generic dataset's folder name for the collection `name`: the name, or `<kind>-<name>` when
/// it is empty or starts with `_` (which would read as medfs's own `_archives`).
fn generic_stem(name: &str, kind: &str) -> String {
    if name.is_empty() || name.starts_with('_') { format!("{kind}-{name}") } else { name.to_string() }
}

/// `slug`, or `slug~2`, `~3`... when a dataset of that name exists already.
fn unique_slug(slug: &str, taken: &mut Vec<String>) -> String {
    let unique = (1..)
        .map(|n| if n == 1 { slug.to_string() } else { format!("{slug}~{n}") })
        .find(|s| !taken.contains(s) && s.as_bytes() != tree::ARCHIVES_DIR)
        .expect("unbounded");
    taken.push(unique.clone());
    unique
}

/// Every readable file of the pool as the organizer sees it: the archive's name under
/// `_archives/` and the member's sanitized path. Loose files count their first path component
/// as their "archive" (a CSV next to the archives is its own source).
fn pool_files(pool: &Pool, headers: &[crate::dicomscan::Headers]) -> Vec<PoolFile> {
    let mut files = Vec::new();
    for (ai, a) in pool.archives.iter().enumerate() {
        let archive_name = String::from_utf8_lossy(&a.mount_path.join(&b'/')).into_owned();
        for (mi, m) in a.members.iter().enumerate() {
            if m.kind != MemberKind::File || matches!(m.data, DataLoc::Bad { .. }) {
                continue;
            }
            let Some(clean) = normalize(&m.path) else { continue };
            let path = String::from_utf8_lossy(&crate::archive::path::join(&clean.components)).into_owned();
            let archive = if a.loose_root().is_some() {
                String::from_utf8_lossy(&clean.components[0]).into_owned()
            } else {
                archive_name.clone()
            };
            let dicom = headers.get(ai).and_then(|h| h.get(&(mi as u32))).cloned();
            files.push(PoolFile { id: (ai as u32, mi as u32), archive, path, size: m.size, mtime: m.mtime, dicom });
        }
    }
    files
}

fn add_dataset(builder: &mut TreeBuilder, pool: &Pool, dataset: organize::Dataset, mtime: i64) {
    let root = builder.ensure_dir(ROOT, &[dataset.slug.as_bytes().to_vec()], mtime, &dataset.slug);
    // Paths come sorted, so a study's files are neighbours: remember the last folder instead of
    // looking every component up again (NIH scale is 700k names).
    let mut last_dir = String::new();
    let mut last_id = root;
    let mut dir_of = |builder: &mut TreeBuilder, rel_path: &str| -> NodeId {
        let dir = rel_path.rsplit_once('/').map_or("", |(d, _)| d);
        if dir != last_dir || last_id == root {
            let comps: Vec<Vec<u8>> = dir.split('/').filter(|c| !c.is_empty()).map(|c| c.as_bytes().to_vec()).collect();
            last_id = builder.ensure_dir(root, &comps, mtime, &dataset.slug);
            last_dir.clear();
            last_dir.push_str(dir);
        }
        last_id
    };
    let name_of = |rel_path: &str| rel_path.rsplit('/').next().unwrap_or(rel_path).as_bytes().to_vec();
    for f in &dataset.files {
        let dir = dir_of(builder, &f.rel_path);
        let m = &pool.archives[f.source.0 as usize].members[f.source.1 as usize];
        let kind = NodeKind::File { archive: f.source.0, member: f.source.1, size: m.size };
        builder.put(dir, &name_of(&f.rel_path), m.mtime, kind, &dataset.slug);
    }
    for g in dataset.generated {
        let dir = dir_of(builder, &g.rel_path);
        builder.add_generated(dir, &name_of(&g.rel_path), mtime, g.bytes.into_boxed_slice());
    }
    for d in dataset.derived {
        let dir = dir_of(builder, &d.rel_path);
        // Its inputs' newest mtime: a derived file is as new as what it is made from.
        let newest = d.spec.inputs.iter().map(|&(a, m)| pool.archives[a as usize].members[m as usize].mtime).max();
        let spec = crate::derive::encode(&d.spec).into_boxed_slice();
        builder.add_derived(dir, &name_of(&d.rel_path), newest.unwrap_or(mtime), spec, d.size);
    }
    for w in &dataset.warnings {
        builder.warn(format!("{}: {w}", dataset.slug));
    }
}

/// The organizer reads label tables and image headers through the same reader as the mount.
impl ContentSource for Reader {
    fn read_all(&self, id: (u32, u32)) -> std::io::Result<Vec<u8>> {
        let size = self.pool().archives[id.0 as usize].members[id.1 as usize].size;
        let mut out = Vec::new();
        self.read(id.0, id.1, 0, size.min(usize::MAX as u64) as usize, &mut out)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(out)
    }

    fn read_head(&self, id: (u32, u32), len: usize) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        Reader::read_head(self, id.0, id.1, len, &mut out).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(out)
    }
}
