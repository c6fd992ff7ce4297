//! The drm PD: drm-shim behind the clients' channels, gpu-server behind its own. Each client's
//! PPC carries an ioctl whose arguments sit in that client's ioctl buffer; user pointers are
//! translated by where the client maps that buffer (from system.xml). On the supervisor's
//! notification it closes the files of a restarted client, and marks every file lost when gpu or
//! gsp restarted (their contexts are gone: `ENODEV` until the client reopens).
use crate::regions::{ro, rw};
use crate::status::Watch;
use crate::sys::{self, drm::channels, drm::regions, supervisor::children};
use drm_shim::user::UserMem;
use drm_shim::Shim;
use gpu_api::{ppc::GpuClient, ClientId};
use pd_core::shm::{ReadOnly, ReadWrite, Region};
use pd_core::{Channel, ChannelSet, Handler, Kernel, MessageInfo};

#[derive(Debug)]
/// One client: its channel, its ioctl buffer here, and where the client itself maps that buffer.
struct Client {
    ch: Channel,
    buf: Region<ReadWrite>,
    user_base: u64,
}

/// The drm PD's state.
#[derive(Debug)]
pub struct DrmPd {
    shim: Shim,
    clients: [Client; 3],
    bulk: Region<ReadWrite>,
    status: Region<ReadOnly>,
    watch: Watch<5>,
}

/// Build the drm PD.
pub fn init(k: &mut dyn Kernel) -> DrmPd {
    let status = ro(regions::STATUS);
    let watch = Watch::new(
        &status,
        [
            children::CLIENT0,
            children::CLIENT1,
            children::CLIENT2,
            children::GPU,
            children::GSP,
        ],
    );
    let client = |ch, decl, user: sys::RegionDecl| Client {
        ch,
        buf: rw(decl),
        user_base: user.vaddr,
    };
    log::info!(
        "{}: serving 3 clients (nouveau 1.4.0 uAPI, nova on request)",
        k.pd_name()
    );
    DrmPd {
        shim: Shim::new(),
        clients: [
            client(
                channels::CLIENT0,
                regions::CLIENT0_IOCTL,
                sys::client0::regions::CLIENT0_IOCTL,
            ),
            client(
                channels::CLIENT1,
                regions::CLIENT1_IOCTL,
                sys::client1::regions::CLIENT1_IOCTL,
            ),
            client(
                channels::CLIENT2,
                regions::CLIENT2_IOCTL,
                sys::client2::regions::CLIENT2_IOCTL,
            ),
        ],
        bulk: rw(regions::DRM_GPU),
        status,
        watch,
    }
}

impl Handler for DrmPd {
    fn protected(&mut self, k: &mut dyn Kernel, ch: Channel, msg: MessageInfo) -> MessageInfo {
        let Some((i, c)) = self.clients.iter().enumerate().find(|(_, c)| c.ch == ch) else {
            log::warn!("{}: PPC on {ch:?}, which is no client channel", k.pd_name());
            return drm_api::transport::reply(Err(drm_api::errno::Errno::EBADF));
        };
        // CAST: three clients.
        let id = ClientId(i as u8);
        let mem = UserMem::new(&c.buf, c.user_base);
        let mut mrs = k.mrs().clone();
        let reply = self.shim.handle(
            &mut GpuClient::new(k, channels::GPU, &self.bulk),
            id,
            &mem,
            msg,
            &mut mrs,
        );
        k.mrs().copy_prefix(&mrs, reply.count());
        reply
    }

    fn notified(&mut self, k: &mut dyn Kernel, set: ChannelSet) {
        if !set.contains(channels::SUPERVISOR) {
            return;
        }
        for child in self.watch.moved(&self.status) {
            let client = [children::CLIENT0, children::CLIENT1, children::CLIENT2]
                .iter()
                .position(|c| *c == child);
            match client {
                Some(i) => {
                    log::info!("{}: client {i} restarted: closing its files", k.pd_name());
                    // CAST: three clients.
                    self.shim.client_restarted(
                        &mut GpuClient::new(k, channels::GPU, &self.bulk),
                        ClientId(i as u8),
                    );
                }
                None => {
                    log::info!(
                        "{}: gpu or gsp restarted: every open file answers ENODEV until reopened",
                        k.pd_name()
                    );
                    self.shim.gpu_restarted();
                }
            }
        }
    }
}
