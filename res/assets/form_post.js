// SPDX-License-Identifier: AGPL-3.0-only
// The OAuth 2.0 Form Post Response Mode page (templates/form_post.html): submit its form to
// the client at once. Without JavaScript, the page's button does the same.
document.getElementById("form-post").submit();
