/* proto_product.h - typed product references. */
#ifndef PROTO_PRODUCT_H
#define PROTO_PRODUCT_H

#include "cm_error.h"

/*
 * Checks a product reference: "gtin:" + 8, 12, 13 or 14 digits with a
 * valid check digit; "isbn:" + ISBN-10 (last char may be X) or ISBN-13
 * with a valid check digit, digits only; "asin:" + 10 chars of [A-Z0-9];
 * "url:" + an http:// or https:// URL with a host and no spaces or control
 * characters. At most CM_PRODUCT_MAX bytes in all. Fails with
 * CM_ERR_BAD_GTIN for a wrong GTIN check digit, CM_ERR_BAD_PRODUCT for
 * anything else, with a detail naming the problem.
 */
cm_err proto_product_check(const char *ref);

#endif
