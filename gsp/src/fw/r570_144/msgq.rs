//! msgqTxHeader, msgqRxHeader, GSP_MSG_QUEUE_ELEMENT (570.144).
