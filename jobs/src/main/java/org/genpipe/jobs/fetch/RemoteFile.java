package org.genpipe.jobs.fetch;

/**
 * One file of a data set's official distribution.
 *
 * @param name file name, also the name under a mirror base URL
 * @param url official URL
 * @param md5 published MD5 (hex), or null where the publisher gives none
 * @param extract whether it is a .tar.gz to unpack after download
 */
public record RemoteFile(String name, String url, String md5, boolean extract) {}
