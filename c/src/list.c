/* Listing the bus: the List request and an opaque handle over the broker's Listing reply, read through
 * accessors (no struct crosses the API, so FFIs that only speak pointers and integers can use it). */
#include <stdlib.h>

#include "session.h"

struct ir_listing {
  ir_ctl_msg_t reply; /* IR_OP_LISTING; owns the decoded strings and arrays */
};

static ir_error_e list(ir_conn_t *conn, ir_listing_t **out) {
  if (conn == NULL || out == NULL) {
    return ir_fail(IR_ERR_INVALID_ARGUMENT, "ir_list: conn and out must not be NULL");
  }
  *out = NULL;
  ir_listing_t *listing = calloc(1, sizeof *listing);
  if (listing == NULL) {
    return ir_fail(IR_ERR_IO, "out of memory");
  }
  ir_ctl_msg_t msg = {.opcode = IR_OP_LIST};
  ir_error_e code = ir_conn_request(conn, &msg, &listing->reply, IR_OP_LISTING);
  if (code != IR_OK) {
    free(listing);
    return code;
  }
  *out = listing;
  return IR_OK;
}

ir_error_e ir_list(ir_conn_t *conn, ir_listing_t **out) {
  return ir_conn_record(conn, list(conn, out));
}

void ir_listing_free(ir_listing_t *listing) {
  if (listing != NULL) {
    ir_ctl_free(&listing->reply);
    free(listing);
  }
}

/* The i-th app, channel or function, or NULL when the listing is NULL or i is out of range. */
static const ir_ctl_app_info_t *app_at(const ir_listing_t *listing, size_t i) {
  return listing != NULL && i < listing->reply.u.listing.apps_count ? &listing->reply.u.listing.apps[i] : NULL;
}

static const ir_ctl_channel_info_t *channel_at(const ir_listing_t *listing, size_t i) {
  return listing != NULL && i < listing->reply.u.listing.channels_count ? &listing->reply.u.listing.channels[i] : NULL;
}

static const ir_ctl_function_info_t *function_at(const ir_listing_t *listing, size_t i) {
  return listing != NULL && i < listing->reply.u.listing.functions_count ? &listing->reply.u.listing.functions[i]
                                                                         : NULL;
}

/* ---- Apps ---- */

size_t ir_listing_app_count(const ir_listing_t *listing) {
  return listing != NULL ? listing->reply.u.listing.apps_count : 0;
}

uint32_t ir_listing_app_id(const ir_listing_t *listing, size_t i) {
  const ir_ctl_app_info_t *app = app_at(listing, i);
  return app != NULL ? (uint32_t)app->app_id : 0;
}

const char *ir_listing_app_name(const ir_listing_t *listing, size_t i) {
  const ir_ctl_app_info_t *app = app_at(listing, i);
  return app != NULL ? app->name : NULL;
}

int64_t ir_listing_app_pid(const ir_listing_t *listing, size_t i) {
  const ir_ctl_app_info_t *app = app_at(listing, i);
  return app != NULL ? app->pid : 0;
}

/* ---- Channels ---- */

size_t ir_listing_channel_count(const ir_listing_t *listing) {
  return listing != NULL ? listing->reply.u.listing.channels_count : 0;
}

uint64_t ir_listing_channel_id(const ir_listing_t *listing, size_t i) {
  const ir_ctl_channel_info_t *channel = channel_at(listing, i);
  return channel != NULL ? (uint64_t)channel->channel_id : 0;
}

const char *ir_listing_channel_name(const ir_listing_t *listing, size_t i) {
  const ir_ctl_channel_info_t *channel = channel_at(listing, i);
  return channel != NULL ? channel->name : NULL;
}

uint32_t ir_listing_channel_owner(const ir_listing_t *listing, size_t i) {
  const ir_ctl_channel_info_t *channel = channel_at(listing, i);
  return channel != NULL ? (uint32_t)channel->owner_app_id : 0;
}

uint64_t ir_listing_channel_fingerprint(const ir_listing_t *listing, size_t i) {
  const ir_ctl_channel_info_t *channel = channel_at(listing, i);
  return channel != NULL ? (uint64_t)channel->fingerprint : 0;
}

uint64_t ir_listing_channel_capacity(const ir_listing_t *listing, size_t i) {
  const ir_ctl_channel_info_t *channel = channel_at(listing, i);
  return channel != NULL ? (uint64_t)channel->capacity : 0;
}

int ir_listing_channel_lossy(const ir_listing_t *listing, size_t i) {
  const ir_ctl_channel_info_t *channel = channel_at(listing, i);
  return channel != NULL && channel->lossy ? 1 : 0;
}

uint32_t ir_listing_channel_subscribers(const ir_listing_t *listing, size_t i) {
  const ir_ctl_channel_info_t *channel = channel_at(listing, i);
  return channel != NULL ? (uint32_t)channel->subscribers : 0;
}

uint64_t ir_listing_channel_published(const ir_listing_t *listing, size_t i) {
  const ir_ctl_channel_info_t *channel = channel_at(listing, i);
  return channel != NULL ? (uint64_t)channel->published : 0;
}

/* ---- Functions ---- */

size_t ir_listing_function_count(const ir_listing_t *listing) {
  return listing != NULL ? listing->reply.u.listing.functions_count : 0;
}

uint64_t ir_listing_function_id(const ir_listing_t *listing, size_t i) {
  const ir_ctl_function_info_t *function = function_at(listing, i);
  return function != NULL ? (uint64_t)function->function_id : 0;
}

const char *ir_listing_function_name(const ir_listing_t *listing, size_t i) {
  const ir_ctl_function_info_t *function = function_at(listing, i);
  return function != NULL ? function->name : NULL;
}

uint32_t ir_listing_function_owner(const ir_listing_t *listing, size_t i) {
  const ir_ctl_function_info_t *function = function_at(listing, i);
  return function != NULL ? (uint32_t)function->owner_app_id : 0;
}

uint64_t ir_listing_function_request_fingerprint(const ir_listing_t *listing, size_t i) {
  const ir_ctl_function_info_t *function = function_at(listing, i);
  return function != NULL ? (uint64_t)function->request_fingerprint : 0;
}

uint64_t ir_listing_function_response_fingerprint(const ir_listing_t *listing, size_t i) {
  const ir_ctl_function_info_t *function = function_at(listing, i);
  return function != NULL ? (uint64_t)function->response_fingerprint : 0;
}
