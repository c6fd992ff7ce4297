//! The RM object tree GSP-RM keeps for its clients: `GSP_RM_ALLOC`, `GSP_RM_CONTROL` and `FREE`.
//!
//! Objects live in a fixed pool, each with its client, handle, parent and class. The rules are
//! resserv's, as far as this stack uses them: a client is its own root; handles are unique within
//! a client (duplicate: `NV_ERR_INSERT_DUPLICATE_NAME`); a parent must exist in the same client
//! (`NV_ERR_INVALID_OBJECT_PARENT`) and be of the class the child needs; an unknown class, or one
//! this chip does not have, is `NV_ERR_INVALID_CLASS`; a parameter block of the wrong size is
//! `NV_ERR_INVALID_PARAM_STRUCT`; freeing an object frees its whole subtree. A refused request
//! changes nothing.
//!
//! Class tree modelled (nouveau `r535_gsp`/`r535_fifo`/`r535_ce` allocate these the same way):
//! client → device → {subdevice → usermode, VA space, GPFIFO channel → copy-engine object}.
//! Channels live in [`crate::fifo`]; the tree holds their channel id.
use crate::fifo::{work_submit_token, Channel, ChannelConfig, MAX_CHANNELS, MAX_GPFIFO_ENTRIES};
use crate::phys::Memory;
use gsp::chip::Chipset;
use gsp::fw::current::rm::{
    host, ChannelClasses, NvStatus, RmClass, RmControl, ADDR_FBMEM, ADDR_SYSMEM,
    NV0000_ALLOC_PARAMETERS, NV0080_ALLOC_PARAMETERS, NV0080_CTRL_DMA_SET_PAGE_DIRECTORY_PARAMS,
    NV0080_CTRL_DMA_UNSET_PAGE_DIRECTORY_PARAMS, NV2080_ALLOC_PARAMETERS,
    NV2080_CTRL_CE_GET_FAULT_METHOD_BUFFER_SIZE_PARAMS, NV2080_ENGINE_TYPE_COPY0,
    NV2080_ENGINE_TYPE_COPY9, NVA06F_CTRL_BIND_PARAMS, NVA06F_CTRL_GPFIFO_SCHEDULE_PARAMS,
    NVB0B5_ALLOCATION_PARAMETERS, NVB0B5_ALLOCATION_PARAMETERS_VERSION_1,
    NVC36F_CTRL_CMD_GPFIFO_GET_WORK_SUBMIT_TOKEN_PARAMS, NV_CHANNEL_ALLOC_PARAMS,
    NV_MEMORY_DESC_PARAMS, NV_VASPACE_ALLOCATION_FLAGS_IS_EXTERNALLY_OWNED,
    NV_VASPACE_ALLOCATION_INDEX_GPU_NEW, NV_VASPACE_ALLOCATION_PARAMETERS,
};
use gsp::mmu::{Level, Target};
use zerocopy::{FromBytes, IntoBytes};

/// Objects the tree holds at once (all clients together).
pub const MAX_OBJECTS: usize = 128;
/// Bytes of fault method buffer a channel must provide (`NV2080_CTRL_CMD_CE_GET_FAULT_METHOD_BUFFER_SIZE`).
pub const FAULT_METHOD_BUFFER_SIZE: u32 = 0x1000;
/// Bytes of instance block a channel must provide (nouveau `gf100_chan_inst.size`).
pub const INSTANCE_SIZE: u64 = 0x1000;
/// `NV_VASPACE_ALLOCATION_PARAMETERS.bigPageSize` the model accepts besides 0 (the default).
pub const BIG_PAGE_SIZE: u32 = 0x1_0000;

/// What an object is, with its class-specific state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A client (the root of its tree).
    Client,
    /// `NV01_DEVICE_0`.
    Device,
    /// `NV20_SUBDEVICE_0`.
    Subdevice,
    /// A usermode (doorbell) object.
    Usermode,
    /// `FERMI_VASPACE_A`.
    VaSpace {
        /// Allocated with `IS_EXTERNALLY_OWNED`: the client writes the page tables.
        external: bool,
        /// The PD3 the client registered with `SET_PAGE_DIRECTORY`.
        root: Option<(Target, u64)>,
    },
    /// A GPFIFO channel, by channel id.
    Channel {
        /// Index into [`Rm::channels`].
        chid: usize,
    },
    /// A copy-engine object on a channel.
    Copy,
}

/// One object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Object {
    /// Its client.
    pub client: u32,
    /// Its handle (for a client, the client handle itself).
    pub handle: u32,
    /// Its parent's handle (0 for a client).
    pub parent: u32,
    /// Its class.
    pub class: RmClass,
    /// What it is.
    pub kind: Kind,
}

/// An allocation request (`rpc_gsp_rm_alloc_v03_00` minus the parameters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocRequest {
    /// `hClient`.
    pub client: u32,
    /// `hParent`.
    pub parent: u32,
    /// `hObject`.
    pub object: u32,
    /// `hClass`.
    pub class: u32,
}

/// The RM state: objects and channels.
#[derive(Debug)]
pub struct Rm {
    chip: Chipset,
    objects: [Option<Object>; MAX_OBJECTS],
    /// The channels, indexed by channel id.
    pub channels: [Option<Channel>; MAX_CHANNELS],
}

fn params<T: FromBytes>(p: &[u8]) -> Result<T, NvStatus> {
    T::read_from_bytes(p).map_err(|_| NvStatus::InvalidParamStruct)
}

fn check(ok: bool, status: NvStatus) -> Result<(), NvStatus> {
    if ok {
        Ok(())
    } else {
        Err(status)
    }
}

impl Rm {
    /// An empty tree for `chip`.
    pub const fn new(chip: Chipset) -> Self {
        Self {
            chip,
            objects: [None; MAX_OBJECTS],
            channels: [None; MAX_CHANNELS],
        }
    }

    /// The object `handle` of `client` (the client object itself when `handle == client`).
    pub fn object(&self, client: u32, handle: u32) -> Option<&Object> {
        self.objects
            .iter()
            .flatten()
            .find(|o| o.client == client && o.handle == handle)
    }

    fn object_mut(&mut self, client: u32, handle: u32) -> Option<&mut Object> {
        self.objects
            .iter_mut()
            .flatten()
            .find(|o| o.client == client && o.handle == handle)
    }

    /// How many objects exist.
    pub fn len(&self) -> usize {
        self.objects.iter().flatten().count()
    }

    /// Whether the tree is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The page directory of `client`'s VA space `vaspace`, if registered.
    pub fn vaspace_root(&self, client: u32, vaspace: u32) -> Option<(Target, u64)> {
        match self.object(client, vaspace)?.kind {
            Kind::VaSpace { root, .. } => root,
            _ => None,
        }
    }

    fn insert(&mut self, o: Object) -> Result<(), NvStatus> {
        let slot = self
            .objects
            .iter_mut()
            .find(|s| s.is_none())
            .ok_or(NvStatus::InsufficientResources)?;
        *slot = Some(o);
        Ok(())
    }

    /// `GSP_RM_ALLOC`: create `req.object` of `req.class` under `req.parent` with `params`.
    ///
    /// # Errors
    /// The NV_STATUS RM would return; nothing changes on error.
    pub fn alloc(&mut self, req: AllocRequest, p: &[u8], mem: &Memory) -> Result<(), NvStatus> {
        let class = RmClass::try_from(req.class).map_err(|_| NvStatus::InvalidClass)?;
        if matches!(class, RmClass::Nv01RootClient | RmClass::Nv01Root) {
            return self.alloc_client(req, class, p);
        }
        check(
            self.object(req.client, req.client).is_some(),
            NvStatus::InvalidClient,
        )?;
        check(
            req.object != 0 && req.object != req.client,
            NvStatus::InvalidObjectHandle,
        )?;
        check(
            self.object(req.client, req.object).is_none(),
            NvStatus::InsertDuplicateName,
        )?;
        let parent = *self
            .object(req.client, req.parent)
            .ok_or(NvStatus::InvalidObjectParent)?;
        let classes = ChannelClasses::for_chip(self.chip).ok_or(NvStatus::InvalidClass)?;
        let kind = match (class, parent.kind) {
            (RmClass::Nv01Device0, Kind::Client) => {
                let a: NV0080_ALLOC_PARAMETERS = params(p)?;
                check(a.deviceId == 0, NvStatus::InvalidArgument)?;
                Kind::Device
            }
            (RmClass::Nv20Subdevice0, Kind::Device) => {
                let a: NV2080_ALLOC_PARAMETERS = params(p)?;
                check(a.subDeviceId == 0, NvStatus::InvalidArgument)?;
                Kind::Subdevice
            }
            (RmClass::FermiVaspaceA, Kind::Device) => {
                let a: NV_VASPACE_ALLOCATION_PARAMETERS = params(p)?;
                check(
                    a.index == NV_VASPACE_ALLOCATION_INDEX_GPU_NEW,
                    NvStatus::InvalidArgument,
                )?;
                check(
                    a.bigPageSize == 0 || a.bigPageSize == BIG_PAGE_SIZE,
                    NvStatus::InvalidArgument,
                )?;
                Kind::VaSpace {
                    external: a.flags & NV_VASPACE_ALLOCATION_FLAGS_IS_EXTERNALLY_OWNED != 0,
                    root: None,
                }
            }
            (c, Kind::Subdevice) if c == classes.usermode => {
                check(p.is_empty(), NvStatus::InvalidParamStruct)?;
                Kind::Usermode
            }
            (c, Kind::Device) if c == classes.channel => {
                let a: NV_CHANNEL_ALLOC_PARAMS = params(p)?;
                let chid = self.alloc_channel(req, &a, mem)?;
                Kind::Channel { chid }
            }
            (c, Kind::Channel { chid }) if c == classes.copy => {
                let a: NVB0B5_ALLOCATION_PARAMETERS = params(p)?;
                let ch = self
                    .channels
                    .get_mut(chid)
                    .and_then(Option::as_mut)
                    .ok_or(NvStatus::InvalidObjectParent)?;
                check(
                    a.version == NVB0B5_ALLOCATION_PARAMETERS_VERSION_1,
                    NvStatus::InvalidArgument,
                )?;
                check(a.engineType == ch.config.engine, NvStatus::InvalidArgument)?;
                check(ch.copy_object.is_none(), NvStatus::InvalidState)?;
                ch.copy_object = Some((req.object, c));
                Kind::Copy
            }
            // A known class under the wrong parent, or a class another chip has.
            (c, _)
                if [classes.usermode, classes.channel, classes.copy].contains(&c)
                    || matches!(
                        c,
                        RmClass::Nv01Device0 | RmClass::Nv20Subdevice0 | RmClass::FermiVaspaceA
                    ) =>
            {
                return Err(NvStatus::InvalidObjectParent)
            }
            _ => return Err(NvStatus::InvalidClass),
        };
        let o = Object {
            client: req.client,
            handle: req.object,
            parent: req.parent,
            class,
            kind,
        };
        self.insert(o)
            .inspect_err(|_| self.undo_kind(kind, &parent))
    }

    /// Roll back the side effects of a half-done allocation (the pool was full).
    fn undo_kind(&mut self, kind: Kind, parent: &Object) {
        match kind {
            Kind::Channel { chid } => {
                if let Some(s) = self.channels.get_mut(chid) {
                    *s = None;
                }
            }
            Kind::Copy => {
                if let Kind::Channel { chid } = parent.kind {
                    if let Some(Some(ch)) = self.channels.get_mut(chid) {
                        ch.copy_object = None;
                    }
                }
            }
            _ => {}
        }
    }

    fn alloc_client(
        &mut self,
        req: AllocRequest,
        class: RmClass,
        p: &[u8],
    ) -> Result<(), NvStatus> {
        let a: NV0000_ALLOC_PARAMETERS = params(p)?;
        check(
            req.client != 0 && req.object == req.client,
            NvStatus::InvalidClient,
        )?;
        check(
            req.parent == 0 || req.parent == req.client,
            NvStatus::InvalidObjectParent,
        )?;
        check(a.hClient == req.client, NvStatus::InvalidArgument)?;
        check(
            self.object(req.client, req.client).is_none(),
            NvStatus::InsertDuplicateName,
        )?;
        self.insert(Object {
            client: req.client,
            handle: req.client,
            parent: 0,
            class,
            kind: Kind::Client,
        })
    }

    /// Validate a channel's parameters and take a channel id.
    fn alloc_channel(
        &mut self,
        req: AllocRequest,
        a: &NV_CHANNEL_ALLOC_PARAMS,
        mem: &Memory,
    ) -> Result<usize, NvStatus> {
        let vas = self
            .object(req.client, a.hVASpace)
            .ok_or(NvStatus::InvalidObjectHandle)?;
        check(
            matches!(vas.kind, Kind::VaSpace { .. }) && vas.parent == req.parent,
            NvStatus::InvalidObjectHandle,
        )?;
        check(
            (NV2080_ENGINE_TYPE_COPY0..=NV2080_ENGINE_TYPE_COPY9).contains(&a.engineType),
            NvStatus::NotSupported,
        )?;
        let entries_ok = a.gpFifoEntries.is_power_of_two()
            && (2..=MAX_GPFIFO_ENTRIES).contains(&a.gpFifoEntries);
        check(
            entries_ok && a.gpFifoOffset & 7 == 0,
            NvStatus::InvalidArgument,
        )?;
        // CHANNEL_TYPE (1:0) must be PHYSICAL, VPR (2:2) false.
        check(a.flags & 0b111 == 0, NvStatus::InvalidFlags)?;
        let userd = desc(mem, &a.userdMem, host::USERD_SIZE, host::USERD_SIZE)?;
        desc(mem, &a.instanceMem, INSTANCE_SIZE, INSTANCE_SIZE)?;
        let ramfc = desc(mem, &a.ramfcMem, 0x200, 0x200)?;
        let inst_end = a.instanceMem.base.saturating_add(a.instanceMem.size);
        check(
            a.ramfcMem.addressSpace == a.instanceMem.addressSpace
                && ramfc.1 >= a.instanceMem.base
                && ramfc.1.saturating_add(a.ramfcMem.size) <= inst_end,
            NvStatus::InvalidArgument,
        )?;
        let mb = desc(
            mem,
            &a.mthdbufMem,
            u64::from(FAULT_METHOD_BUFFER_SIZE),
            0x1000,
        )?;
        check(mb.0 != Target::Vram, NvStatus::InvalidArgument)?;
        let chid = self
            .channels
            .iter()
            .position(Option::is_none)
            .ok_or(NvStatus::InsufficientResources)?;
        let config = ChannelConfig {
            client: req.client,
            handle: req.object,
            vaspace: a.hVASpace,
            engine: a.engineType,
            gpfifo_va: a.gpFifoOffset,
            entries: a.gpFifoEntries,
            userd,
        };
        if let Some(slot) = self.channels.get_mut(chid) {
            *slot = Some(Channel::new(config));
        }
        Ok(chid)
    }

    /// `FREE`: free `handle` of `client` and everything below it (the whole client when
    /// `handle == client`).
    ///
    /// # Errors
    /// `NV_ERR_INVALID_CLIENT` for an unknown client, `NV_ERR_OBJECT_NOT_FOUND` for an unknown
    /// object.
    pub fn free(&mut self, client: u32, handle: u32) -> Result<(), NvStatus> {
        check(
            self.object(client, client).is_some(),
            NvStatus::InvalidClient,
        )?;
        check(
            self.object(client, handle).is_some(),
            NvStatus::ObjectNotFound,
        )?;
        // Mark the subtree: repeat until no object of the client has a marked, unmarked-child.
        let mut marked = [false; MAX_OBJECTS];
        for (m, o) in marked.iter_mut().zip(&self.objects) {
            *m = matches!(o, Some(o) if o.client == client && o.handle == handle);
        }
        loop {
            let mut grew = false;
            for i in 0..MAX_OBJECTS {
                let Some(Some(o)) = self.objects.get(i) else {
                    continue;
                };
                if o.client != client || marked.get(i).copied().unwrap_or(true) {
                    continue;
                }
                let parent_marked = self.objects.iter().zip(&marked).any(|(p, &m)| {
                    m && matches!(p, Some(p) if p.handle == o.parent && p.client == client)
                });
                if parent_marked {
                    if let Some(m) = marked.get_mut(i) {
                        *m = true;
                        grew = true;
                    }
                }
            }
            if !grew {
                break;
            }
        }
        for (slot, m) in self.objects.iter_mut().zip(marked) {
            if !m {
                continue;
            }
            if let Some(o) = slot.take() {
                if let Kind::Channel { chid } = o.kind {
                    if let Some(c) = self.channels.get_mut(chid) {
                        *c = None;
                    }
                }
            }
        }
        // A freed copy object leaves its (surviving) channel without one.
        for ch in self.channels.iter_mut().flatten() {
            if let Some((h, _)) = ch.copy_object {
                if ch.config.client == client
                    && !self
                        .objects
                        .iter()
                        .flatten()
                        .any(|o| o.client == client && o.handle == h)
                {
                    ch.copy_object = None;
                }
            }
        }
        Ok(())
    }

    /// `GSP_RM_CONTROL` `cmd` on `handle` of `client`; `params` holds the request and receives
    /// the reply.
    ///
    /// # Errors
    /// The NV_STATUS RM would return; a refused control changes nothing.
    pub fn control(
        &mut self,
        client: u32,
        handle: u32,
        cmd: u32,
        params_buf: &mut [u8],
        mem: &Memory,
    ) -> Result<(), NvStatus> {
        check(
            self.object(client, client).is_some(),
            NvStatus::InvalidClient,
        )?;
        let obj = *self
            .object(client, handle)
            .ok_or(NvStatus::InvalidObjectHandle)?;
        let cmd = RmControl::try_from(cmd).map_err(|_| NvStatus::NotSupported)?;
        check(
            params_buf.len() == cmd.params_size(),
            NvStatus::InvalidParamStruct,
        )?;
        match (cmd, obj.kind) {
            (RmControl::DmaSetPageDirectory, Kind::Device) => {
                let a: NV0080_CTRL_DMA_SET_PAGE_DIRECTORY_PARAMS = params(params_buf)?;
                let target = match a.flags & 0b11 {
                    0 => Target::Vram,
                    1 => Target::SysCoherent,
                    2 => Target::SysNonCoherent,
                    _ => return Err(NvStatus::InvalidArgument),
                };
                check(
                    a.numEntries == Level::Pd3.entries() as u32,
                    NvStatus::InvalidArgument,
                )?;
                check(a.physAddress & 0xfff == 0, NvStatus::InvalidAddress)?;
                let readable = match target {
                    Target::Vram => mem.fb.is_backed(a.physAddress, Level::Pd3.table_size()),
                    _ => mem.sys.is_backed(a.physAddress, Level::Pd3.table_size()),
                };
                check(readable, NvStatus::InvalidAddress)?;
                let vas = self.child_vaspace(client, handle, a.hVASpace)?;
                match &mut vas.kind {
                    Kind::VaSpace {
                        external: true,
                        root,
                    } => *root = Some((target, a.physAddress)),
                    _ => return Err(NvStatus::NotSupported),
                }
            }
            (RmControl::DmaUnsetPageDirectory, Kind::Device) => {
                let a: NV0080_CTRL_DMA_UNSET_PAGE_DIRECTORY_PARAMS = params(params_buf)?;
                if let Kind::VaSpace { root, .. } =
                    &mut self.child_vaspace(client, handle, a.hVASpace)?.kind
                {
                    check(root.is_some(), NvStatus::InvalidState)?;
                    *root = None;
                }
            }
            (RmControl::CeGetFaultMethodBufferSize, Kind::Subdevice) => {
                let r = NV2080_CTRL_CE_GET_FAULT_METHOD_BUFFER_SIZE_PARAMS {
                    size: FAULT_METHOD_BUFFER_SIZE,
                };
                params_buf.copy_from_slice(r.as_bytes());
            }
            (RmControl::Bind, Kind::Channel { chid }) => {
                let a: NVA06F_CTRL_BIND_PARAMS = params(params_buf)?;
                let ch = self.channel_mut(chid)?;
                check(a.engineType == ch.config.engine, NvStatus::InvalidArgument)?;
                ch.bound = true;
            }
            (RmControl::GpfifoSchedule, Kind::Channel { chid }) => {
                let a: NVA06F_CTRL_GPFIFO_SCHEDULE_PARAMS = params(params_buf)?;
                let ch = self.channel_mut(chid)?;
                check(ch.bound, NvStatus::InvalidState)?;
                ch.scheduled = a.bEnable != 0;
            }
            (RmControl::GpfifoGetWorkSubmitToken, Kind::Channel { chid }) => {
                let r = NVC36F_CTRL_CMD_GPFIFO_GET_WORK_SUBMIT_TOKEN_PARAMS {
                    workSubmitToken: work_submit_token(chid),
                };
                params_buf.copy_from_slice(r.as_bytes());
            }
            _ => return Err(NvStatus::NotSupported),
        }
        Ok(())
    }

    fn channel_mut(&mut self, chid: usize) -> Result<&mut Channel, NvStatus> {
        self.channels
            .get_mut(chid)
            .and_then(Option::as_mut)
            .ok_or(NvStatus::InvalidState)
    }

    fn child_vaspace(
        &mut self,
        client: u32,
        device: u32,
        vas: u32,
    ) -> Result<&mut Object, NvStatus> {
        let o = self
            .object_mut(client, vas)
            .ok_or(NvStatus::InvalidObjectHandle)?;
        check(
            matches!(o.kind, Kind::VaSpace { .. }) && o.parent == device,
            NvStatus::InvalidObjectHandle,
        )?;
        Ok(o)
    }
}

/// Check a memory descriptor: address space, alignment, size, and that the model can reach it.
fn desc(
    mem: &Memory,
    d: &NV_MEMORY_DESC_PARAMS,
    min_size: u64,
    align: u64,
) -> Result<(Target, u64), NvStatus> {
    let target = match d.addressSpace {
        ADDR_FBMEM => Target::Vram,
        ADDR_SYSMEM => Target::SysCoherent,
        _ => return Err(NvStatus::InvalidArgument),
    };
    check(
        d.size >= min_size && d.base & (align - 1) == 0,
        NvStatus::InvalidArgument,
    )?;
    let backed = match target {
        Target::Vram => mem.fb.is_backed(d.base, d.size),
        _ => mem.sys.is_backed(d.base, d.size),
    };
    check(backed, NvStatus::InvalidAddress)?;
    Ok((target, d.base))
}

#[cfg(test)]
pub(crate) mod tests {
    extern crate std;
    use super::*;
    use crate::phys::FbLayout;
    use pd_core::shm::Region;
    use std::vec;
    use zerocopy::FromZeros;

    pub(crate) const CLIENT: u32 = 0xc100_0001;
    pub(crate) const DEVICE: u32 = 0xde00_0001;
    pub(crate) const SUBDEV: u32 = 0x5d00_0001;
    pub(crate) const VAS: u32 = 0x9af1_0001;
    pub(crate) const CHAN: u32 = 0xc400_0001;
    pub(crate) const CE: u32 = 0xce00_0001;

    pub(crate) fn memory() -> Memory {
        let mut mem = Memory::new(FbLayout {
            reported_size: 64 << 20,
        });
        mem.add_vram(Region::from_static(vec![0u8; 4 << 20].leak()))
            .unwrap();
        mem.sys
            .add(0x8000_0000, Region::from_static(vec![0u8; 1 << 20].leak()))
            .unwrap();
        mem
    }

    fn req(parent: u32, object: u32, class: RmClass) -> AllocRequest {
        AllocRequest {
            client: CLIENT,
            parent,
            object,
            class: class.into(),
        }
    }

    pub(crate) fn client_params(h: u32) -> NV0000_ALLOC_PARAMETERS {
        let mut p = NV0000_ALLOC_PARAMETERS::new_zeroed();
        p.hClient = h;
        p
    }

    pub(crate) fn channel_params(vas: u32) -> NV_CHANNEL_ALLOC_PARAMS {
        let mut a = NV_CHANNEL_ALLOC_PARAMS::new_zeroed();
        a.hVASpace = vas;
        a.gpFifoOffset = 0x10000;
        a.gpFifoEntries = 16;
        a.engineType = NV2080_ENGINE_TYPE_COPY0;
        let fb = |base, size| NV_MEMORY_DESC_PARAMS {
            base,
            size,
            addressSpace: ADDR_FBMEM,
            cacheAttrib: 1,
        };
        a.instanceMem = fb(0x20_0000, 0x1000);
        a.ramfcMem = fb(0x20_0000, 0x200);
        a.userdMem = fb(0x20_1000, 0x200);
        a.mthdbufMem = NV_MEMORY_DESC_PARAMS {
            base: 0x8000_0000,
            size: 0x1000,
            addressSpace: ADDR_SYSMEM,
            cacheAttrib: 0,
        };
        a
    }

    /// SET_PAGE_DIRECTORY for `VAS` with its PD3 at FB 0x1000.
    fn page_directory() -> NV0080_CTRL_DMA_SET_PAGE_DIRECTORY_PARAMS {
        NV0080_CTRL_DMA_SET_PAGE_DIRECTORY_PARAMS {
            physAddress: 0x1000,
            numEntries: 4,
            flags: 0,
            hVASpace: VAS,
            chId: 0,
            subDeviceId: 0,
            pasid: 0,
        }
    }

    pub(crate) fn external_vaspace() -> NV_VASPACE_ALLOCATION_PARAMETERS {
        let mut v = NV_VASPACE_ALLOCATION_PARAMETERS::new_zeroed();
        v.flags = NV_VASPACE_ALLOCATION_FLAGS_IS_EXTERNALLY_OWNED;
        v
    }

    /// Client, device, subdevice, VA space, channel and copy object for AD102.
    pub(crate) fn tree(mem: &Memory) -> Rm {
        let mut rm = Rm::new(Chipset::AD102);
        let c = AllocRequest {
            client: CLIENT,
            parent: 0,
            object: CLIENT,
            class: RmClass::Nv01RootClient.into(),
        };
        rm.alloc(c, client_params(CLIENT).as_bytes(), mem).unwrap();
        rm.alloc(
            req(CLIENT, DEVICE, RmClass::Nv01Device0),
            NV0080_ALLOC_PARAMETERS::new_zeroed().as_bytes(),
            mem,
        )
        .unwrap();
        rm.alloc(req(DEVICE, SUBDEV, RmClass::Nv20Subdevice0), &[0; 4], mem)
            .unwrap();
        rm.alloc(
            req(DEVICE, VAS, RmClass::FermiVaspaceA),
            external_vaspace().as_bytes(),
            mem,
        )
        .unwrap();
        rm.alloc(
            req(DEVICE, CHAN, RmClass::AmpereChannelGpfifoA),
            channel_params(VAS).as_bytes(),
            mem,
        )
        .unwrap();
        let ce = NVB0B5_ALLOCATION_PARAMETERS {
            version: 1,
            engineType: NV2080_ENGINE_TYPE_COPY0,
        };
        rm.alloc(req(CHAN, CE, RmClass::AmpereDmaCopyB), ce.as_bytes(), mem)
            .unwrap();
        rm
    }

    #[test]
    fn builds_a_channel_tree_and_controls_it() {
        let mem = memory();
        let mut rm = tree(&mem);
        assert_eq!(rm.len(), 6);
        let chid = match rm.object(CLIENT, CHAN).unwrap().kind {
            Kind::Channel { chid } => chid,
            k => panic!("{k:?}"),
        };
        let ch = rm.channels[chid].unwrap();
        assert_eq!(ch.copy_object, Some((CE, RmClass::AmpereDmaCopyB)));
        assert_eq!(ch.config.userd, (Target::Vram, 0x20_1000));
        // Schedule before bind is refused; bind with the right engine, then schedule.
        let mut sched = [1u8, 0];
        assert_eq!(
            rm.control(
                CLIENT,
                CHAN,
                RmControl::GpfifoSchedule.into(),
                &mut sched,
                &mem
            ),
            Err(NvStatus::InvalidState)
        );
        let mut bind = NVA06F_CTRL_BIND_PARAMS { engineType: 9 }
            .as_bytes()
            .to_vec();
        rm.control(CLIENT, CHAN, RmControl::Bind.into(), &mut bind, &mem)
            .unwrap();
        rm.control(
            CLIENT,
            CHAN,
            RmControl::GpfifoSchedule.into(),
            &mut sched,
            &mem,
        )
        .unwrap();
        assert!(rm.channels[chid].unwrap().scheduled);
        let mut tok = [0u8; 4];
        rm.control(
            CLIENT,
            CHAN,
            RmControl::GpfifoGetWorkSubmitToken.into(),
            &mut tok,
            &mem,
        )
        .unwrap();
        assert_eq!(u32::from_le_bytes(tok), work_submit_token(chid));
        // Page directory: registered on the device for its VA space.
        let mut pd = page_directory();
        rm.control(
            CLIENT,
            DEVICE,
            RmControl::DmaSetPageDirectory.into(),
            pd.as_mut_bytes(),
            &mem,
        )
        .unwrap();
        assert_eq!(rm.vaspace_root(CLIENT, VAS), Some((Target::Vram, 0x1000)));
        let mut sz = [0u8; 4];
        rm.control(
            CLIENT,
            SUBDEV,
            RmControl::CeGetFaultMethodBufferSize.into(),
            &mut sz,
            &mem,
        )
        .unwrap();
        assert_eq!(u32::from_le_bytes(sz), FAULT_METHOD_BUFFER_SIZE);
    }

    #[test]
    fn alloc_errors_are_nv_status_codes_and_change_nothing() {
        let mem = memory();
        let mut rm = tree(&mem);
        let n = rm.len();
        let dev = NV0080_ALLOC_PARAMETERS::new_zeroed();
        let ce = NVB0B5_ALLOCATION_PARAMETERS {
            version: 1,
            engineType: 9,
        };
        let chan = channel_params(VAS);
        let cases: [(AllocRequest, &[u8], NvStatus); 10] = [
            (
                req(CLIENT, DEVICE, RmClass::Nv01Device0),
                dev.as_bytes(),
                NvStatus::InsertDuplicateName,
            ),
            (
                req(0x1234, 0x77, RmClass::Nv01Device0),
                dev.as_bytes(),
                NvStatus::InvalidObjectParent,
            ),
            (
                AllocRequest {
                    client: 0xbad,
                    ..req(CLIENT, 0x77, RmClass::Nv01Device0)
                },
                dev.as_bytes(),
                NvStatus::InvalidClient,
            ),
            (
                AllocRequest {
                    class: 0x1234,
                    ..req(CLIENT, 0x77, RmClass::Nv01Device0)
                },
                dev.as_bytes(),
                NvStatus::InvalidClass,
            ),
            // A Turing channel class on an Ada GPU, and a subdevice under the client.
            (
                req(DEVICE, 0x77, RmClass::TuringChannelGpfifoA),
                chan.as_bytes(),
                NvStatus::InvalidClass,
            ),
            (
                req(CLIENT, 0x77, RmClass::Nv20Subdevice0),
                &[0; 4],
                NvStatus::InvalidObjectParent,
            ),
            (
                req(DEVICE, 0x77, RmClass::Nv20Subdevice0),
                &[0; 8],
                NvStatus::InvalidParamStruct,
            ),
            (
                req(DEVICE, 0x77, RmClass::Nv20Subdevice0),
                &[1, 0, 0, 0],
                NvStatus::InvalidArgument,
            ),
            (
                req(DEVICE, 0, RmClass::Nv20Subdevice0),
                &[0; 4],
                NvStatus::InvalidObjectHandle,
            ),
            (
                req(CHAN, 0x77, RmClass::AmpereDmaCopyB),
                ce.as_bytes(),
                NvStatus::InvalidState,
            ),
        ];
        for (r, p, want) in cases {
            assert_eq!(rm.alloc(r, p, &mem), Err(want), "{r:x?}");
            assert_eq!(rm.len(), n);
        }
        // Channel parameter checks.
        let mut bad = channel_params(VAS);
        bad.gpFifoEntries = 12;
        assert_eq!(
            rm.alloc(
                req(DEVICE, 0x78, RmClass::AmpereChannelGpfifoA),
                bad.as_bytes(),
                &mem
            ),
            Err(NvStatus::InvalidArgument)
        );
        let mut bad = channel_params(VAS);
        bad.userdMem.base = 0x7fff_0000;
        assert_eq!(
            rm.alloc(
                req(DEVICE, 0x78, RmClass::AmpereChannelGpfifoA),
                bad.as_bytes(),
                &mem
            ),
            Err(NvStatus::InvalidAddress)
        );
        assert_eq!(
            rm.alloc(
                req(DEVICE, 0x78, RmClass::AmpereChannelGpfifoA),
                channel_params(SUBDEV).as_bytes(),
                &mem
            ),
            Err(NvStatus::InvalidObjectHandle)
        );
        assert_eq!(rm.channels.iter().flatten().count(), 1);
        // Duplicate client.
        let c = AllocRequest {
            client: CLIENT,
            parent: 0,
            object: CLIENT,
            class: 0x41,
        };
        assert_eq!(
            rm.alloc(c, client_params(CLIENT).as_bytes(), &mem),
            Err(NvStatus::InsertDuplicateName)
        );
        assert_eq!(rm.len(), n);
    }

    #[test]
    fn control_errors() {
        let mem = memory();
        let mut rm = tree(&mem);
        let mut four = [0u8; 4];
        assert_eq!(
            rm.control(CLIENT, SUBDEV, 0x2080_0123, &mut four, &mem),
            Err(NvStatus::NotSupported)
        );
        assert_eq!(
            rm.control(CLIENT, 0x999, RmControl::Bind.into(), &mut four, &mem),
            Err(NvStatus::InvalidObjectHandle)
        );
        assert_eq!(
            rm.control(0x999, CHAN, RmControl::Bind.into(), &mut four, &mem),
            Err(NvStatus::InvalidClient)
        );
        assert_eq!(
            rm.control(CLIENT, CHAN, RmControl::Bind.into(), &mut [0u8; 8], &mem),
            Err(NvStatus::InvalidParamStruct)
        );
        assert_eq!(
            rm.control(CLIENT, DEVICE, RmControl::Bind.into(), &mut four, &mem),
            Err(NvStatus::NotSupported)
        );
        let mut pd = page_directory();
        type Edit = fn(&mut NV0080_CTRL_DMA_SET_PAGE_DIRECTORY_PARAMS);
        let edits: [(Edit, NvStatus); 5] = [
            (
                |p: &mut NV0080_CTRL_DMA_SET_PAGE_DIRECTORY_PARAMS| p.physAddress = 0x1800,
                NvStatus::InvalidAddress,
            ),
            (
                |p: &mut NV0080_CTRL_DMA_SET_PAGE_DIRECTORY_PARAMS| p.physAddress = 0x7000_0000,
                NvStatus::InvalidAddress,
            ),
            (
                |p: &mut NV0080_CTRL_DMA_SET_PAGE_DIRECTORY_PARAMS| p.numEntries = 512,
                NvStatus::InvalidArgument,
            ),
            (
                |p: &mut NV0080_CTRL_DMA_SET_PAGE_DIRECTORY_PARAMS| p.flags = 3,
                NvStatus::InvalidArgument,
            ),
            (
                |p: &mut NV0080_CTRL_DMA_SET_PAGE_DIRECTORY_PARAMS| p.hVASpace = CHAN,
                NvStatus::InvalidObjectHandle,
            ),
        ];
        for (f, want) in edits {
            let mut q = pd;
            f(&mut q);
            assert_eq!(
                rm.control(
                    CLIENT,
                    DEVICE,
                    RmControl::DmaSetPageDirectory.into(),
                    q.as_mut_bytes(),
                    &mem
                ),
                Err(want)
            );
        }
        assert_eq!(rm.vaspace_root(CLIENT, VAS), None);
        // A VA space RM owns cannot take a client page directory.
        rm.alloc(
            req(DEVICE, 0x9af2, RmClass::FermiVaspaceA),
            NV_VASPACE_ALLOCATION_PARAMETERS::new_zeroed().as_bytes(),
            &mem,
        )
        .unwrap();
        pd.hVASpace = 0x9af2;
        assert_eq!(
            rm.control(
                CLIENT,
                DEVICE,
                RmControl::DmaSetPageDirectory.into(),
                pd.as_mut_bytes(),
                &mem
            ),
            Err(NvStatus::NotSupported)
        );
    }

    #[test]
    fn free_removes_subtrees_and_channels() {
        let mem = memory();
        let mut rm = tree(&mem);
        assert_eq!(rm.free(CLIENT, 0x4242), Err(NvStatus::ObjectNotFound));
        assert_eq!(rm.free(0x4242, 0x4242), Err(NvStatus::InvalidClient));
        rm.free(CLIENT, CE).unwrap();
        assert_eq!(
            rm.channels.iter().flatten().next().unwrap().copy_object,
            None
        );
        rm.free(CLIENT, DEVICE).unwrap();
        assert_eq!(rm.len(), 1);
        assert_eq!(rm.channels.iter().flatten().count(), 0);
        rm.free(CLIENT, CLIENT).unwrap();
        assert!(rm.is_empty());
        // The pool fills and refuses cleanly.
        let mut rm = Rm::new(Chipset::TU102);
        for i in 0..MAX_OBJECTS as u32 {
            let c = AllocRequest {
                client: 0x100 + i,
                parent: 0,
                object: 0x100 + i,
                class: 0x41,
            };
            rm.alloc(c, client_params(0x100 + i).as_bytes(), &mem)
                .unwrap();
        }
        let c = AllocRequest {
            client: 0x9999,
            parent: 0,
            object: 0x9999,
            class: 0,
        };
        assert_eq!(
            rm.alloc(c, client_params(0x9999).as_bytes(), &mem),
            Err(NvStatus::InsufficientResources)
        );
    }
}
