//! The caller's side of the gsp channel: [`GspClient`], one PPC per operation.

use crate::codec::{
    get_bytes, get_value, pair, put_bytes, words, Op, MAX_INLINE_PARAMS, PARAMS_MR, REPLY_PARAMS_MR,
};
use crate::{GspError, GspEvent, Health, RmAlloc, RmControl, StaticInfo};
use pd_core::{Channel, Kernel, MessageInfo};

/// The PPC stub: gpu-server holds one, for its channel to `gsp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GspClient {
    ch: Channel,
}

impl GspClient {
    /// A client calling the gsp PD over `ch`.
    pub const fn new(ch: Channel) -> Self {
        Self { ch }
    }

    /// One call; `Ok(reply)` when the label says success.
    fn call(&self, k: &mut dyn Kernel, op: Op, count: usize) -> Result<MessageInfo, GspError> {
        let reply = k
            .ppcall(self.ch, MessageInfo::new(op as u64, count))
            .map_err(|_| GspError::Unreachable)?;
        match reply.label() {
            0 => Ok(reply),
            code => {
                // CAST: the status is a u32 in the low half of mr0.
                let status = k.mrs().get(0) as u32;
                Err(GspError::from_code(code, status))
            }
        }
    }

    /// Copy returned parameters back into `params` (an RM error still returns them).
    fn params_back(k: &mut dyn Kernel, params: &mut [u8]) -> Result<(), GspError> {
        let len = k.mrs().get(1);
        if len != params.len() as u64 {
            return Err(GspError::BadRequest);
        }
        get_bytes(k.mrs(), REPLY_PARAMS_MR, params);
        Ok(())
    }

    /// See [`crate::GspOps::rm_alloc`].
    ///
    /// # Errors
    /// [`GspError::TooLarge`] for parameters over [`MAX_INLINE_PARAMS`]; the gsp PD's error;
    /// [`GspError::Unreachable`] when the PPC failed.
    pub fn rm_alloc(
        &self,
        k: &mut dyn Kernel,
        req: &RmAlloc,
        params: &mut [u8],
    ) -> Result<(), GspError> {
        let len = u32::try_from(params.len()).map_err(|_| GspError::TooLarge)?;
        if params.len() > MAX_INLINE_PARAMS {
            return Err(GspError::TooLarge);
        }
        let mrs = k.mrs();
        mrs.set(0, pair(req.client, req.parent));
        mrs.set(1, pair(req.object, req.class));
        mrs.set(2, pair(req.flags, len));
        put_bytes(mrs, PARAMS_MR, params);
        let result = self.call(k, Op::RmAlloc, PARAMS_MR + words(params.len()));
        Self::finish(k, result, params)
    }

    /// See [`crate::GspOps::rm_control`].
    ///
    /// # Errors
    /// As [`GspClient::rm_alloc`].
    pub fn rm_control(
        &self,
        k: &mut dyn Kernel,
        req: &RmControl,
        params: &mut [u8],
    ) -> Result<(), GspError> {
        if params.len() > MAX_INLINE_PARAMS {
            return Err(GspError::TooLarge);
        }
        let mrs = k.mrs();
        mrs.set(0, pair(req.client, req.object));
        mrs.set(1, pair(req.cmd, req.flags));
        mrs.set(2, params.len() as u64);
        put_bytes(mrs, PARAMS_MR, params);
        let result = self.call(k, Op::RmControl, PARAMS_MR + words(params.len()));
        Self::finish(k, result, params)
    }

    fn finish(
        k: &mut dyn Kernel,
        result: Result<MessageInfo, GspError>,
        params: &mut [u8],
    ) -> Result<(), GspError> {
        match result {
            Ok(_) => Self::params_back(k, params),
            Err(e @ GspError::Rm { .. }) => {
                Self::params_back(k, params)?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// See [`crate::GspOps::rm_free`].
    ///
    /// # Errors
    /// The gsp PD's error; [`GspError::Unreachable`].
    pub fn rm_free(
        &self,
        k: &mut dyn Kernel,
        client: u32,
        parent: u32,
        object: u32,
    ) -> Result<(), GspError> {
        k.mrs().set(0, pair(client, parent));
        k.mrs().set(1, u64::from(object));
        self.call(k, Op::RmFree, 2).map(|_| ())
    }

    /// See [`crate::GspOps::static_info`].
    ///
    /// # Errors
    /// The gsp PD's error; [`GspError::Unreachable`].
    pub fn static_info(&self, k: &mut dyn Kernel) -> Result<StaticInfo, GspError> {
        self.call(k, Op::StaticInfo, 0)?;
        Ok(get_value(k.mrs(), 0))
    }

    /// See [`crate::GspOps::health`].
    ///
    /// # Errors
    /// [`GspError::Unreachable`].
    pub fn health(&self, k: &mut dyn Kernel) -> Result<Health, GspError> {
        self.call(k, Op::Health, 0)?;
        Ok(get_value(k.mrs(), 0))
    }

    /// See [`crate::GspOps::next_event`].
    ///
    /// # Errors
    /// [`GspError::Unreachable`].
    pub fn next_event(&self, k: &mut dyn Kernel) -> Result<Option<GspEvent>, GspError> {
        self.call(k, Op::NextEvent, 0)?;
        Ok(match k.mrs().get(0) {
            1 => Some(get_value(k.mrs(), 1)),
            _ => None,
        })
    }
}
